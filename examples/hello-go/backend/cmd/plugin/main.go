// Hello Go: a PowerX backend plugin. It listens where PORT says, answers its health path,
// and serves /api/v1/* for the tenant in the signed context the host adds to each request.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"example.com/powerx/hello-go/internal/auth"
	"example.com/powerx/hello-go/internal/hostapi"
)

const greeting = "hello from go"

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func hello(w http.ResponseWriter, r *http.Request) {
	tenant, _ := auth.FromRequest(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"greeting": greeting,
		"tenant":   tenant.TenantID,
		"user":     tenant.UserID,
		"via":      tenant.Via,
		"pid":      os.Getpid(),
	})
}

func contacts(host *hostapi.Client) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var found []map[string]any
		if err := host.Get(r, "/contacts", &found); err != nil {
			var refusal *hostapi.Error
			if errors.As(err, &refusal) {
				writeJSON(w, refusal.Status, refusal)
				return
			}
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": "host_unreachable", "message": err.Error()})
			return
		}
		first := ""
		if len(found) > 0 {
			first, _ = found[0]["name"].(string)
		}
		writeJSON(w, http.StatusOK, map[string]any{"contacts": len(found), "first_contact": first})
	}
}

// listenAddress: PowerX passes PORT (and POWERX_HTTP_ADDR / PX_BIND_ADDR with the host).
func listenAddress() string {
	for _, name := range []string{"POWERX_HTTP_ADDR", "PX_BIND_ADDR"} {
		if address := os.Getenv(name); address != "" {
			return address
		}
	}
	return net.JoinHostPort("127.0.0.1", os.Getenv("PORT"))
}

func main() {
	host := hostapi.FromEnv()
	api := http.NewServeMux()
	api.HandleFunc("/api/v1/hello", hello)
	api.HandleFunc("/api/v1/contacts", contacts(host))

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", healthz)
	mux.Handle("/api/v1/", auth.Require(auth.ConfigFromEnv(), api))

	server := &http.Server{Addr: listenAddress(), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(ctx)
	}()
	log.Printf("hello-go listening on %s", server.Addr)
	if err := server.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
