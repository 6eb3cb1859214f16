package app

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"go.yaml.in/yaml/v3"
)

// knownVariables is every variable loadConfig reads.
func knownVariables(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	loadConfig(func(name string) string { known[name] = true; return "" })
	if !known["SLACK_BOT_TOKEN"] || !known["REVOKEBOT_HTTP_ADDR"] {
		t.Fatalf("loadConfig read %v", known)
	}
	return known
}

// The manifests below are small Kubernetes objects: only the fields checked.
type (
	k8sObject struct {
		Kind     string `yaml:"kind"`
		Metadata struct{ Name string }
		Data     map[string]string `yaml:"data"`
		Spec     struct {
			// A Deployment's, or a PodDisruptionBudget's.
			Replicas *int `yaml:"replicas"`
			Strategy struct {
				Type          string
				RollingUpdate *struct {
					MaxUnavailable any `yaml:"maxUnavailable"`
					MaxSurge       any `yaml:"maxSurge"`
				} `yaml:"rollingUpdate"`
			}
			Selector labelSelector `yaml:"selector"`
			Template struct {
				Metadata struct{ Labels map[string]string } `yaml:"metadata"`
				Spec     podSpec                            `yaml:"spec"`
			} `yaml:"template"`
			// A PodDisruptionBudget's.
			MinAvailable any `yaml:"minAvailable"`
		} `yaml:"spec"`
	}
	labelSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	podSpec struct {
		RestartPolicy                 string `yaml:"restartPolicy"`
		TerminationGracePeriodSeconds *int   `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               struct {
			RunAsNonRoot   bool                  `yaml:"runAsNonRoot"`
			SeccompProfile struct{ Type string } `yaml:"seccompProfile"`
		} `yaml:"securityContext"`
		TopologySpreadConstraints []struct {
			TopologyKey   string        `yaml:"topologyKey"`
			LabelSelector labelSelector `yaml:"labelSelector"`
		} `yaml:"topologySpreadConstraints"`
		Affinity struct {
			PodAntiAffinity struct {
				Required  []podAffinityTerm `yaml:"requiredDuringSchedulingIgnoredDuringExecution"`
				Preferred []struct {
					PodAffinityTerm podAffinityTerm `yaml:"podAffinityTerm"`
				} `yaml:"preferredDuringSchedulingIgnoredDuringExecution"`
			} `yaml:"podAntiAffinity"`
		}
		Containers []container `yaml:"containers"`
		Volumes    []struct {
			Name                  string
			PersistentVolumeClaim *struct {
				ClaimName string `yaml:"claimName"`
			} `yaml:"persistentVolumeClaim"`
		} `yaml:"volumes"`
	}
	podAffinityTerm struct {
		TopologyKey   string        `yaml:"topologyKey"`
		LabelSelector labelSelector `yaml:"labelSelector"`
	}
	container struct {
		Args []string
		Env  []struct {
			Name      string
			Value     string
			ValueFrom *struct {
				SecretKeyRef *struct{ Name, Key string } `yaml:"secretKeyRef"`
				FieldRef     *struct {
					FieldPath string `yaml:"fieldPath"`
				} `yaml:"fieldRef"`
			} `yaml:"valueFrom"`
		}
		EnvFrom []struct {
			ConfigMapRef *struct{ Name string } `yaml:"configMapRef"`
			SecretRef    *struct{ Name string } `yaml:"secretRef"`
		} `yaml:"envFrom"`
		Ports []struct {
			Name          string
			ContainerPort int `yaml:"containerPort"`
		}
		LivenessProbe  probe `yaml:"livenessProbe"`
		ReadinessProbe probe `yaml:"readinessProbe"`
		Resources      struct {
			Requests map[string]string
			Limits   map[string]string
		}
		SecurityContext struct {
			RunAsNonRoot             bool  `yaml:"runAsNonRoot"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
			Capabilities             struct{ Drop []string }
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	}
	probe struct {
		HTTPGet struct {
			Path string
			Port any
		} `yaml:"httpGet"`
	}
)

// problems collects what a manifest check finds wrong, so that a test can
// report them, or expect them of a manifest broken on purpose.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// decodeManifest reads the objects of a multi-document manifest by kind;
// two objects of one kind are a problem.
func decodeManifest(raw []byte, p *problems) map[string]k8sObject {
	objects := map[string]k8sObject{}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			p.add("does not parse: %v", err)
			break
		}
		if _, dup := objects[o.Kind]; dup {
			p.add("has two objects of kind %s", o.Kind)
		}
		objects[o.Kind] = o
	}
	return objects
}

// checkKinds checks that objects are exactly the kinds wanted.
func checkKinds(p *problems, objects map[string]k8sObject, want ...string) {
	got := slices.Sorted(maps.Keys(objects))
	if slices.Sort(want); !slices.Equal(got, want) {
		p.add("kinds %v, want %v", got, want)
	}
}

// checkConfigMap checks that cm holds only variables revokebot reads, no
// secret, and values that are valid but for the placeholders to fill in,
// which revokebot refuses by name. secrets are the values the Secrets and
// the downward API would add.
func checkConfigMap(p *problems, cm k8sObject, known map[string]bool, secrets map[string]string) {
	if cm.Kind == "" {
		return
	}
	for name, value := range cm.Data {
		if !known[name] {
			p.add("ConfigMap sets %s, which revokebot does not read", name)
		}
		if strings.Contains(name, "TOKEN") || strings.HasSuffix(name, "API_KEY") || isPostgres(value) {
			p.add("ConfigMap holds the secret %s: it belongs in a Secret", name)
		}
	}
	env := map[string]string{"SLACK_APP_TOKEN": "xapp-1-x", "SLACK_BOT_TOKEN": "xoxb-x", "CLOUDFLARE_API_TOKEN": "cf-x"}
	maps.Copy(env, cm.Data)
	maps.Copy(env, secrets)
	if _, err := loadConfig(getter(env)); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			if name, _, _ := strings.Cut(line, ":"); cm.Data[name] != "REPLACE-ME" {
				p.add("ConfigMap value rejected: %s", line)
			}
		}
	}
}

// checkPod checks what both manifests' pods share: one container, which
// runs unprivileged, reads the ConfigMap and a Secret, sets only variables
// revokebot reads, is probed on the port REVOKEBOT_HTTP_ADDR gives, has
// memory bounds, and has time to shut down cleanly.
func checkPod(p *problems, pod podSpec, cm k8sObject, known map[string]bool) (container, bool) {
	if !pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.SeccompProfile.Type != "RuntimeDefault" {
		p.add("pod securityContext %+v: want runAsNonRoot and seccomp RuntimeDefault", pod.SecurityContext)
	}
	// On SIGTERM revokebot finishes the revocation in flight, then delivers
	// what Slack takes in time.
	if need := int((approvals.DefaultExecTimeout + auditDrainTimeout) / time.Second); pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds < need {
		p.add("terminationGracePeriodSeconds %v: want at least %d (a revocation in flight, then the audit drain)",
			intOrUnset(pod.TerminationGracePeriodSeconds), need)
	}
	if len(pod.Containers) != 1 {
		p.add("%d containers, want 1", len(pod.Containers))
		return container{}, false
	}
	c := pod.Containers[0]
	seen := map[string]bool{}
	for _, e := range c.Env {
		if !known[e.Name] {
			p.add("container sets %s, which revokebot does not read", e.Name)
		}
		if seen[e.Name] {
			p.add("container sets %s twice", e.Name)
		}
		seen[e.Name] = true
	}
	var fromConfigMap, fromSecret bool
	for _, from := range c.EnvFrom {
		fromConfigMap = fromConfigMap || from.ConfigMapRef != nil && from.ConfigMapRef.Name == cm.Metadata.Name
		fromSecret = fromSecret || from.SecretRef != nil
	}
	if !fromConfigMap || !fromSecret {
		p.add("envFrom must name the ConfigMap %q and a Secret", cm.Metadata.Name)
	}

	// The probes reach the endpoint where REVOKEBOT_HTTP_ADDR puts it.
	_, port, err := net.SplitHostPort(cm.Data["REVOKEBOT_HTTP_ADDR"])
	if err != nil {
		p.add("ConfigMap REVOKEBOT_HTTP_ADDR: %v", err)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || port != strconv.Itoa(c.Ports[0].ContainerPort) {
		p.add("container ports %+v, want one named http on %s", c.Ports, port)
	} else {
		for _, pr := range []struct {
			probe probe
			path  string
		}{{c.LivenessProbe, "/healthz"}, {c.ReadinessProbe, "/readyz"}} {
			if pr.probe.HTTPGet.Path != pr.path || (pr.probe.HTTPGet.Port != "http" && pr.probe.HTTPGet.Port != c.Ports[0].ContainerPort) {
				p.add("probe %+v, want GET %s on the http port", pr.probe.HTTPGet, pr.path)
			}
		}
	}

	sc := c.SecurityContext
	if !sc.RunAsNonRoot || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !sc.ReadOnlyRootFilesystem ||
		!slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		p.add("container securityContext: want runAsNonRoot, allowPrivilegeEscalation false, readOnlyRootFilesystem, drop ALL; got %+v", sc)
	}
	if c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		p.add("resources %+v: want memory requests and limits", c.Resources)
	}
	return c, true
}

// selects reports whether a selector's labels pick pods with labels.
func selects(sel labelSelector, labels map[string]string) bool {
	if len(sel.MatchLabels) == 0 {
		return false
	}
	for k, v := range sel.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkKubernetesManifest checks deploy/kubernetes.yaml: one pod on a SQLite
// file on a PersistentVolumeClaim.
func checkKubernetesManifest(raw []byte, known map[string]bool) problems {
	var p problems
	objects := decodeManifest(raw, &p)
	checkKinds(&p, objects, "ConfigMap", "PersistentVolumeClaim", "Deployment")
	cm, dep := objects["ConfigMap"], objects["Deployment"]
	checkConfigMap(&p, cm, known, nil)

	spec := dep.Spec
	if spec.Replicas == nil || *spec.Replicas != 1 || spec.Strategy.Type != "Recreate" {
		p.add("want replicas: 1 and strategy Recreate (one SQLite writer), got replicas %v, strategy %q",
			intOrUnset(spec.Replicas), spec.Strategy.Type)
	}
	pod := spec.Template.Spec
	c, ok := checkPod(&p, pod, cm, known)
	if !ok {
		return p
	}

	// The database lives on the claimed volume.
	dataDir := path.Dir(cm.Data["REVOKEBOT_DATABASE"])
	var mounted string
	for _, m := range c.VolumeMounts {
		if m.MountPath == dataDir {
			mounted = m.Name
		}
	}
	claimed := false
	for _, v := range pod.Volumes {
		claimed = claimed || v.Name == mounted && v.PersistentVolumeClaim != nil &&
			v.PersistentVolumeClaim.ClaimName == objects["PersistentVolumeClaim"].Metadata.Name
	}
	if !claimed {
		p.add("%s is not on the PersistentVolumeClaim", dataDir)
	}
	return p
}

// A pod's name as a Deployment makes it, which REVOKEBOT_REPLICA gets.
const examplePodName = "revokebot-6f9c7d8b54-x7k2q"

// checkKubernetesHAManifest checks deploy/kubernetes-ha.yaml: several pods
// sharing a PostgreSQL database, and no volume.
func checkKubernetesHAManifest(raw []byte, known map[string]bool) problems {
	var p problems
	objects := decodeManifest(raw, &p)
	checkKinds(&p, objects, "ConfigMap", "Deployment", "PodDisruptionBudget")
	cm, dep, pdb := objects["ConfigMap"], objects["Deployment"], objects["PodDisruptionBudget"]
	if _, ok := cm.Data["REVOKEBOT_DATABASE"]; ok {
		p.add("ConfigMap sets REVOKEBOT_DATABASE: its URL holds a password, and belongs in a Secret")
	}
	// What the Secret and the downward API add makes a valid configuration
	// on PostgreSQL.
	checkConfigMap(&p, cm, known, map[string]string{
		"REVOKEBOT_DATABASE": "postgres://revokebot:pw@db.example.com:5432/revokebot?sslmode=verify-full",
		"REVOKEBOT_REPLICA":  examplePodName,
	})

	spec := dep.Spec
	if spec.Replicas == nil || *spec.Replicas < 2 {
		p.add("replicas %v: want at least 2, so that one survives the loss of the other", intOrUnset(spec.Replicas))
	}
	// A new pod starts before an old one stops: one always serves.
	if ru := spec.Strategy.RollingUpdate; spec.Strategy.Type != "RollingUpdate" || ru == nil ||
		fmt.Sprint(ru.MaxUnavailable) != "0" || fmt.Sprint(ru.MaxSurge) == "0" {
		p.add("strategy %+v: want RollingUpdate with maxUnavailable 0 and a maxSurge", spec.Strategy)
	}
	labels := spec.Template.Metadata.Labels
	if !selects(spec.Selector, labels) {
		p.add("the Deployment's selector %v does not select its pods %v", spec.Selector.MatchLabels, labels)
	}
	// The budget covers the pods, and lets one go at a time.
	if pdb.Kind != "" {
		if !selects(pdb.Spec.Selector, labels) {
			p.add("the PodDisruptionBudget's selector %v does not select the pods %v", pdb.Spec.Selector.MatchLabels, labels)
		}
		n, ok := pdb.Spec.MinAvailable.(int)
		if !ok || n < 1 || spec.Replicas != nil && n >= *spec.Replicas {
			p.add("PodDisruptionBudget minAvailable %v: want a number from 1 to replicas-1, so that a drain evicts one pod at a time", pdb.Spec.MinAvailable)
		}
	}

	pod := spec.Template.Spec
	// The replicas prefer different nodes.
	spread := false
	for _, tsc := range pod.TopologySpreadConstraints {
		spread = spread || tsc.TopologyKey == "kubernetes.io/hostname" && selects(tsc.LabelSelector, labels)
	}
	terms := slices.Clone(pod.Affinity.PodAntiAffinity.Required)
	for _, w := range pod.Affinity.PodAntiAffinity.Preferred {
		terms = append(terms, w.PodAffinityTerm)
	}
	for _, term := range terms {
		spread = spread || term.TopologyKey == "kubernetes.io/hostname" && selects(term.LabelSelector, labels)
	}
	if !spread {
		p.add("no topologySpreadConstraints or podAntiAffinity on kubernetes.io/hostname selecting the pods: both replicas may land on one node")
	}

	// Nothing on disk: everything is in PostgreSQL.
	if len(pod.Volumes) != 0 {
		p.add("%d volumes: want none, the database is PostgreSQL", len(pod.Volumes))
	}
	c, ok := checkPod(&p, pod, cm, known)
	if !ok {
		return p
	}
	if len(c.VolumeMounts) != 0 {
		p.add("%d volumeMounts: want none", len(c.VolumeMounts))
	}

	// The database's URL comes from a Secret, and each replica is named
	// after its pod.
	if databaseSecret(c) == "" {
		p.add("REVOKEBOT_DATABASE must come from a Secret (valueFrom.secretKeyRef)")
	}
	fromPodName := false
	for _, e := range c.Env {
		fromPodName = fromPodName || e.Name == "REVOKEBOT_REPLICA" && e.Value == "" && e.ValueFrom != nil &&
			e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name"
	}
	if !fromPodName {
		p.add("REVOKEBOT_REPLICA must be the pod's name (valueFrom.fieldRef metadata.name)")
	}
	return p
}

// databaseSecret returns the Secret and key REVOKEBOT_DATABASE comes from in
// c, as "name/key", or "" if it does not come from a Secret.
func databaseSecret(c container) string {
	for _, e := range c.Env {
		if e.Name == "REVOKEBOT_DATABASE" && e.Value == "" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil &&
			e.ValueFrom.SecretKeyRef.Name != "" && e.ValueFrom.SecretKeyRef.Key != "" {
			return e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		}
	}
	return ""
}

func TestDeployKubernetesManifest(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../../deploy/kubernetes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, problem := range checkKubernetesManifest(raw, knownVariables(t)) {
		t.Error("deploy/kubernetes.yaml: " + problem)
	}
}

func TestDeployKubernetesHAManifest(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../../deploy/kubernetes-ha.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, problem := range checkKubernetesHAManifest(raw, knownVariables(t)) {
		t.Error("deploy/kubernetes-ha.yaml: " + problem)
	}
}

// The checks of the HA manifest find what they are for: each change below
// breaks the manifest, and must be reported.
func TestDeployKubernetesHAManifestChecksCatch(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../../deploy/kubernetes-ha.yaml")
	if err != nil {
		t.Fatal(err)
	}
	known := knownVariables(t)
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"one replica", "replicas: 2", "replicas: 1", "replicas 1"},
		{"Recreate", "type: RollingUpdate", "type: Recreate", "strategy"},
		{"an old pod stopped first", "maxUnavailable: 0", "maxUnavailable: 1", "strategy"},
		{"a volume", "      containers:\n", "      volumes:\n        - name: tmp\n          emptyDir: {}\n      containers:\n", "volumes"},
		{"the URL in the ConfigMap", "  REVOKEBOT_HTTP_ADDR: \":8080\"\n",
			"  REVOKEBOT_HTTP_ADDR: \":8080\"\n  REVOKEBOT_DATABASE: \"postgres://revokebot:pw@db:5432/revokebot\"\n", "REVOKEBOT_DATABASE"},
		{"the URL as a plain value", "              valueFrom:\n                secretKeyRef:\n                  name: revokebot-database\n                  key: url\n",
			"              value: postgres://revokebot:pw@db:5432/revokebot\n", "REVOKEBOT_DATABASE must come from a Secret"},
		{"a fixed replica name", "              valueFrom:\n                fieldRef:\n                  fieldPath: metadata.name\n",
			"              value: revokebot\n", "REVOKEBOT_REPLICA must be the pod's name"},
		{"a variable revokebot does not read", "REVOKEBOT_LEASE_TTL:", "REVOKEBOT_LEASE:", "does not read"},
		{"a PDB for other pods", "  minAvailable: 1\n  unhealthyPodEvictionPolicy: AlwaysAllow\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: revokebot\n",
			"  minAvailable: 1\n  unhealthyPodEvictionPolicy: AlwaysAllow\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: other\n", "PodDisruptionBudget's selector"},
		{"a PDB that blocks every drain", "  minAvailable: 1\n", "  minAvailable: 2\n", "minAvailable"},
		{"no PDB", "kind: PodDisruptionBudget", "kind: Unknown", "kinds"},
		{"no spread", "topologyKey: kubernetes.io/hostname", "topologyKey: topology.kubernetes.io/zone", "hostname"},
		{"the readiness probe on /healthz", "path: /readyz", "path: /healthz", "/readyz"},
		{"probes on another port", "containerPort: 8080", "containerPort: 9090", "ports"},
		{"a short grace period", "terminationGracePeriodSeconds: 180", "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds"},
		{"broken YAML", "kind: Deployment", "kind: [Deployment", "parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if strings.Count(string(raw), tc.old) != 1 {
				t.Fatalf("the manifest holds %q %d times, want once: update this case", tc.old, strings.Count(string(raw), tc.old))
			}
			broken := strings.Replace(string(raw), tc.old, tc.new, 1)
			got := checkKubernetesHAManifest([]byte(broken), known)
			if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("not caught: want a problem saying %q, got %q", tc.want, got)
			}
		})
	}
}

// The migrate-db Job copies the single instance's file, on its claim, into
// the database the HA manifest's replicas use, with flags migrate-db takes.
func TestDeployKubernetesMigrateDBJob(t *testing.T) {
	t.Parallel()
	manifest := func(name string) map[string]k8sObject {
		raw, err := os.ReadFile("../../../deploy/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var p problems
		objects := decodeManifest(raw, &p)
		for _, problem := range p {
			t.Errorf("deploy/%s: %s", name, problem)
		}
		return objects
	}
	single, ha, jobs := manifest("kubernetes.yaml"), manifest("kubernetes-ha.yaml"), manifest("kubernetes-migrate-db.yaml")
	var p problems
	checkKinds(&p, jobs, "Job")
	for _, problem := range p {
		t.Fatal("deploy/kubernetes-migrate-db.yaml: " + problem)
	}
	pod := jobs["Job"].Spec.Template.Spec
	if len(pod.Containers) != 1 || len(ha["Deployment"].Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want one container in the Job and in the HA Deployment")
	}
	c := pod.Containers[0]
	file := single["ConfigMap"].Data["REVOKEBOT_DATABASE"]
	if want := []string{"migrate-db", "--from", file, "--to", "$(REVOKEBOT_DATABASE)"}; !slices.Equal(c.Args, want) {
		t.Errorf("args %q, want %q", c.Args, want)
	}
	if got, want := databaseSecret(c), databaseSecret(ha["Deployment"].Spec.Template.Spec.Containers[0]); got == "" || got != want {
		t.Errorf("REVOKEBOT_DATABASE from the Secret %q, want %q, as the replicas", got, want)
	}
	known := knownVariables(t)
	for _, e := range c.Env {
		if !known[e.Name] {
			t.Errorf("the Job sets %s, which revokebot does not read", e.Name)
		}
	}
	if pod.RestartPolicy != "Never" {
		t.Errorf("restartPolicy %q, want Never: a failed copy is read and fixed, not retried", pod.RestartPolicy)
	}
	sc := c.SecurityContext
	if !pod.SecurityContext.RunAsNonRoot || !sc.RunAsNonRoot || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		!sc.ReadOnlyRootFilesystem || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("securityContext: want what the Deployments have; got pod %+v, container %+v", pod.SecurityContext, sc)
	}
	var mounted string
	for _, m := range c.VolumeMounts {
		if m.MountPath == path.Dir(file) {
			mounted = m.Name
		}
	}
	claimed := false
	for _, v := range pod.Volumes {
		claimed = claimed || v.Name == mounted && v.PersistentVolumeClaim != nil &&
			v.PersistentVolumeClaim.ClaimName == single["PersistentVolumeClaim"].Metadata.Name
	}
	if !claimed {
		t.Errorf("%s is not on the single instance's PersistentVolumeClaim", path.Dir(file))
	}

	// migrate-db takes those flags.
	var stdout, stderr bytes.Buffer
	if err := Run(t.Context(), []string{"migrate-db", "-h"}, getter(nil), &stdout, &stderr); err != nil {
		t.Fatalf("revokebot migrate-db -h: %v", err)
	}
	for _, flag := range []string{"-from", "-to"} {
		if !strings.Contains(stderr.String(), "  "+flag+" ") {
			t.Errorf("revokebot migrate-db -h does not list %s:\n%s", flag, stderr.String())
		}
	}
}

// TestDeployDockerfile checks what the Dockerfile says against the code, as
// no Docker engine is at hand to build it.
func TestDeployDockerfile(t *testing.T) {
	t.Parallel()
	f, err := os.Open("../../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	known := knownVariables(t)
	var (
		env                       = map[string]string{}
		binary, healthcheck, port string
		sc                        = bufio.NewScanner(f)
	)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "ENV":
			name, value, _ := strings.Cut(fields[1], "=")
			env[name] = value
		case "COPY":
			if strings.HasPrefix(fields[1], "--from=build") && strings.HasSuffix(fields[len(fields)-2], "/revokebot") {
				binary = fields[len(fields)-1]
			}
		case "EXPOSE":
			port = fields[1]
		case "CMD":
			healthcheck = strings.Join(fields[1:], " ") // the HEALTHCHECK's continuation line
		}
	}
	for name := range env {
		if !known[name] {
			t.Errorf("Dockerfile sets %s, which revokebot does not read", name)
		}
	}
	if err := checkHTTPAddr(env["REVOKEBOT_HTTP_ADDR"]); err != nil || !strings.HasSuffix(env["REVOKEBOT_HTTP_ADDR"], ":"+port) {
		t.Errorf("REVOKEBOT_HTTP_ADDR=%q and EXPOSE %q disagree (%v)", env["REVOKEBOT_HTTP_ADDR"], port, err)
	}
	if want := `["` + binary + `", "healthcheck"]`; binary == "" || healthcheck != want {
		t.Errorf("HEALTHCHECK CMD %s, want %s (exec form: no shell in the image)", healthcheck, want)
	}
	if path.Dir(env["REVOKEBOT_DATABASE"]) != "/data" {
		t.Errorf("REVOKEBOT_DATABASE=%q is not on the /data volume", env["REVOKEBOT_DATABASE"])
	}
}

func intOrUnset(p *int) any {
	if p == nil {
		return "unset"
	}
	return *p
}
