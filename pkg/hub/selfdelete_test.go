package hub

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

// apiServer answers DELETE requests the way the Kubernetes API does, with
// the status code the test sets, and records them.
type apiServer struct {
	status int
	got    []string
}

func (a *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The DeleteOptions come as protobuf (client-go's default) or JSON;
	// either way the policy's name is in the body.
	body, _ := io.ReadAll(r.Body)
	policy := ""
	if bytes.Contains(body, []byte("Background")) {
		policy = "Background"
	}
	a.got = append(a.got, r.Method+" "+r.URL.Path+" "+policy)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	if a.status == http.StatusOK {
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Success"}`)
		return
	}
	reason := map[int]string{404: "NotFound", 409: "Conflict", 403: "Forbidden"}[a.status]
	fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":%q,"code":%d,"message":"x"}`, reason, a.status)
}

func TestSelfDelete(t *testing.T) {
	tests := []struct {
		status  int
		wantErr bool
	}{
		{http.StatusOK, false},
		{http.StatusNotFound, false}, // already gone
		{http.StatusConflict, false}, // already terminating
		{http.StatusForbidden, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			api := &apiServer{status: tt.status}
			srv := httptest.NewServer(api)
			defer srv.Close()
			cfg := &rest.Config{Host: srv.URL}
			delNS, err := deleteNamespace(cfg, "shark-ab12cd")
			if err != nil {
				t.Fatal(err)
			}
			delPod, err := deletePod(cfg, "team", "shark-hub-ab12cd")
			if err != nil {
				t.Fatal(err)
			}
			for _, del := range []func(context.Context) error{delNS, delPod} {
				if err := del(context.Background()); (err != nil) != tt.wantErr {
					t.Errorf("err = %v, want error %v", err, tt.wantErr)
				}
			}
			want := "DELETE /api/v1/namespaces/shark-ab12cd Background\nDELETE /api/v1/namespaces/team/pods/shark-hub-ab12cd Background"
			if got := strings.Join(api.got, "\n"); got != want {
				t.Errorf("requests:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestSelfDeleteOutsideCluster(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if _, err := DeleteNamespace("shark-x"); err == nil || !strings.Contains(err.Error(), "in-cluster") {
		t.Errorf("DeleteNamespace outside a cluster: %v", err)
	}
}
