// __PLUGIN_NAME__: a PowerX backend plugin. It listens where PORT says, answers its health
// path, and greets the tenant of the signed context the host adds to each request
// (X-PowerX-CTX, checked with X-PowerX-CTX-SIG and the secret in PLUGIN_CTX_HMAC_SECRET).
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log"
	"net/http"
	"os"
)

const greeting = "hello from __PLUGIN_NAME__"

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// signedTenant is the context's tenant id; ok is false when the signature is wrong.
func signedTenant(r *http.Request) (tenant any, ok bool) {
	context := r.Header.Get("X-PowerX-CTX")
	if context == "" {
		return nil, true
	}
	mac := hmac.New(sha256.New, []byte(os.Getenv("PLUGIN_CTX_HMAC_SECRET")))
	mac.Write([]byte(context))
	given, err := hex.DecodeString(r.Header.Get("X-PowerX-CTX-SIG"))
	if err != nil || !hmac.Equal(mac.Sum(nil), given) {
		return nil, false
	}
	var claims struct {
		TenantID any `json:"tid"`
	}
	raw, err := base64.StdEncoding.DecodeString(context)
	if err != nil || json.Unmarshal(raw, &claims) != nil {
		return nil, false
	}
	return claims.TenantID, true
}

func main() {
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	http.HandleFunc("/api/v1/hello", func(w http.ResponseWriter, r *http.Request) {
		tenant, ok := signedTenant(r)
		if !ok {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "bad context signature"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"greeting": greeting, "tenant": tenant})
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil))
}
