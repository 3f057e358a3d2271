package session

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"

	utilrand "k8s.io/apimachinery/pkg/util/rand"
)

// Names and labels shared by the CLI, the hub and `clean`.
const (
	// FieldManager owns every field kubectl-shark applies.
	FieldManager = "kubectl-shark"

	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelComponent = "app.kubernetes.io/component"
	LabelSession   = "shark.io/session"
	// LabelNode marks a worker pod with the node it captures on, so
	// SyncWorkers can tell which node a pod stands for without parsing names.
	LabelNode = "shark.io/node"

	ManagedByValue   = "kubectl-shark"
	ComponentHub     = "hub"
	ComponentWorker  = "worker"
	NamespacePrefix  = "shark-"
	HubServerName    = "shark-hub" // the TLS name workers verify, whatever the hub pod's name
	TLSSecretName    = "shark-tls"
	HubName          = "shark-hub" // pod and ServiceAccount of the hub
	WorkerNamePrefix = "shark-worker-"

	// Keys of the TLS Secret.
	SecretCACert  = "ca.crt"
	SecretHubCert = "hub.crt"
	SecretHubKey  = "hub.key"
	SecretToken   = "token"

	// Ports of the hub container.
	HubWorkerPort = 8443 // TLS, workers dial in
	HubAPIPort    = 8899 // plain HTTP, reached only through port-forward

	// Where the Secret is mounted in both pods, and the pcap ring in workers.
	TLSMountPath     = "/etc/shark/tls"
	StorageMountPath = "/var/lib/shark"

	idLength = 6
)

// idPattern is what a session id looks like: lowercase letters and digits.
var idPattern = regexp.MustCompile(`^[a-z0-9]{6}$`)

// newID returns a random session id. Tests swap it for a fixed one, as
// kubectl debug swaps its name suffix.
var newID = func() string { return utilrand.String(idLength) }

// ValidID reports whether id is a well-formed session id.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// SessionNamespace is the namespace that a session creates for itself.
func SessionNamespace(id string) string { return NamespacePrefix + id }

// names are the object names of one session. In the session's own
// namespace they are fixed; in a shared namespace (--shark-namespace) they
// carry the id, so that two sessions can live side by side.
type names struct {
	hub, secret, serviceAccount, rbac, worker string
}

func namesFor(id string, shared bool) names {
	if shared {
		return names{
			hub:            HubName + "-" + id,
			secret:         TLSSecretName + "-" + id,
			serviceAccount: HubName + "-" + id,
			rbac:           HubName + "-" + id,
			worker:         WorkerNamePrefix + id + "-",
		}
	}
	return names{
		hub:            HubName,
		secret:         TLSSecretName,
		serviceAccount: HubName,
		// Cluster-scoped objects need a name unique to the session.
		rbac:   NamespacePrefix + id + "-hub",
		worker: WorkerNamePrefix,
	}
}

// NodeHash is the short, stable, DNS-safe stand-in for a node name in a
// worker pod's name (node names can be 253 characters long).
func NodeHash(node string) string {
	sum := sha256.Sum256([]byte(node))
	return hex.EncodeToString(sum[:5])
}

// Labels returns the labels that every object of the session carries.
func Labels(id, component string) map[string]string {
	l := map[string]string{
		LabelManagedBy: ManagedByValue,
		LabelSession:   id,
	}
	if component != "" {
		l[LabelComponent] = component
	}
	return l
}

// SessionSelector selects every object of one session.
func SessionSelector(id string) string {
	return fmt.Sprintf("%s=%s,%s=%s", LabelManagedBy, ManagedByValue, LabelSession, id)
}

// anySessionSelector selects the objects of every session.
func anySessionSelector() string {
	return fmt.Sprintf("%s=%s,%s", LabelManagedBy, ManagedByValue, LabelSession)
}
