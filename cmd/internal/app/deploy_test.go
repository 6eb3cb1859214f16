package app

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"maps"
	"net"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

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
			Replicas *int `yaml:"replicas"`
			Strategy struct{ Type string }
			Template struct {
				Spec podSpec `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	podSpec struct {
		SecurityContext struct {
			RunAsNonRoot   bool                  `yaml:"runAsNonRoot"`
			SeccompProfile struct{ Type string } `yaml:"seccompProfile"`
		} `yaml:"securityContext"`
		Containers []container `yaml:"containers"`
		Volumes    []struct {
			Name                  string
			PersistentVolumeClaim *struct {
				ClaimName string `yaml:"claimName"`
			} `yaml:"persistentVolumeClaim"`
		} `yaml:"volumes"`
	}
	container struct {
		Env     []struct{ Name string }
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

func TestDeployKubernetesManifest(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../../deploy/kubernetes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objects := map[string]k8sObject{}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("deploy/kubernetes.yaml: %v", err)
		}
		objects[o.Kind] = o
	}
	cm, dep := objects["ConfigMap"], objects["Deployment"]
	if len(objects) != 3 || objects["PersistentVolumeClaim"].Kind == "" || cm.Kind == "" || dep.Kind == "" {
		t.Fatalf("want a ConfigMap, a PersistentVolumeClaim and a Deployment, got %v", slices.Collect(maps.Keys(objects)))
	}

	// The ConfigMap holds only variables revokebot reads, and no secret.
	known := knownVariables(t)
	for name := range cm.Data {
		if !known[name] {
			t.Errorf("ConfigMap sets %s, which revokebot does not read", name)
		}
		if strings.Contains(name, "TOKEN") || strings.HasSuffix(name, "API_KEY") {
			t.Errorf("ConfigMap holds the secret %s: it belongs in the Secret", name)
		}
	}
	// Its values are valid, but for the placeholders to fill in, which
	// revokebot refuses by name.
	env := map[string]string{"SLACK_APP_TOKEN": "xapp-1-x", "SLACK_BOT_TOKEN": "xoxb-x", "CLOUDFLARE_API_TOKEN": "cf-x"}
	for k, v := range cm.Data {
		env[k] = v
	}
	if _, err := loadConfig(getter(env)); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			if name, _, _ := strings.Cut(line, ":"); cm.Data[name] != "REPLACE-ME" {
				t.Errorf("ConfigMap value rejected: %s", line)
			}
		}
	}

	spec := dep.Spec
	if spec.Replicas == nil || *spec.Replicas != 1 || spec.Strategy.Type != "Recreate" {
		t.Errorf("want replicas: 1 and strategy Recreate (one SQLite writer), got replicas %v, strategy %q",
			intOrUnset(spec.Replicas), spec.Strategy.Type)
	}
	pod := spec.Template.Spec
	if !pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("pod securityContext %+v", pod.SecurityContext)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	for _, e := range c.Env {
		if !known[e.Name] {
			t.Errorf("container sets %s, which revokebot does not read", e.Name)
		}
	}
	var fromConfigMap, fromSecret bool
	for _, from := range c.EnvFrom {
		fromConfigMap = fromConfigMap || from.ConfigMapRef != nil && from.ConfigMapRef.Name == cm.Metadata.Name
		fromSecret = fromSecret || from.SecretRef != nil
	}
	if !fromConfigMap || !fromSecret {
		t.Errorf("envFrom must name the ConfigMap %q and a Secret", cm.Metadata.Name)
	}

	// The probes reach the endpoint where REVOKEBOT_HTTP_ADDR puts it.
	_, port, err := net.SplitHostPort(cm.Data["REVOKEBOT_HTTP_ADDR"])
	if err != nil {
		t.Fatalf("REVOKEBOT_HTTP_ADDR: %v", err)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || port != strconv.Itoa(c.Ports[0].ContainerPort) {
		t.Errorf("container ports %+v, want one named http on %s", c.Ports, port)
	}
	for _, p := range []struct {
		probe probe
		path  string
	}{{c.LivenessProbe, "/healthz"}, {c.ReadinessProbe, "/readyz"}} {
		if p.probe.HTTPGet.Path != p.path || (p.probe.HTTPGet.Port != "http" && p.probe.HTTPGet.Port != c.Ports[0].ContainerPort) {
			t.Errorf("probe %+v, want GET %s on the http port", p.probe.HTTPGet, p.path)
		}
	}

	sc := c.SecurityContext
	if !sc.RunAsNonRoot || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !sc.ReadOnlyRootFilesystem ||
		!slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("container securityContext: want runAsNonRoot, allowPrivilegeEscalation false, readOnlyRootFilesystem, drop ALL; got %+v", sc)
	}
	if c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("resources %+v: want memory requests and limits", c.Resources)
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
		t.Errorf("%s is not on the PersistentVolumeClaim", dataDir)
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
