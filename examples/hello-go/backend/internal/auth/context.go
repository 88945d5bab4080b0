// Package auth verifies the signed tenant context PowerX puts on every request to a
// plugin, the way PowerXPluginBase's JWT middleware does: an HS256 bearer token first,
// then the X-PowerX-CTX / X-PowerX-CTX-SIG pair; neither valid: 401.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"time"
)

// TenantContext is who a request is made as.
type TenantContext struct {
	TenantID      int64    `json:"tid"`
	UserID        int64    `json:"uid"`
	Roles         []string `json:"roles"`
	Permissions   []string `json:"perms"`
	PolicyVersion string   `json:"policy_version"`
	Via           string   `json:"-"` // "jwt" or "signed-context"
}

// Config is what the middleware checks against.
type Config struct {
	Issuer             string
	AcceptAudiences    []string
	HMACSecret         string // the JWT's key; empty: bearer tokens are not checked
	ContextHMACSecret  string
	AllowSignedContext bool
	ClockSkew          time.Duration
	MaxContextAge      time.Duration
}

// ConfigFromEnv reads the settings PowerX hands a plugin it runs behind its router
// (POWERX_PROXY=1): the POWERX_SECURITY_* names, the audience plugin:<id> by default.
func ConfigFromEnv() Config {
	audience := strings.TrimSpace(os.Getenv("POWERX_SECURITY_JWT_AUDIENCE"))
	if audience == "" {
		audience = "plugin:" + strings.TrimSpace(os.Getenv("POWERX_PLUGIN_ID"))
	}
	return Config{
		Issuer:             strings.TrimSpace(os.Getenv("POWERX_SECURITY_JWT_ISSUER")),
		AcceptAudiences:    []string{audience},
		HMACSecret:         strings.TrimSpace(os.Getenv("POWERX_SECURITY_JWT_SECRET")),
		ContextHMACSecret:  strings.TrimSpace(os.Getenv("POWERX_SECURITY_CTX_HMAC_SECRET")),
		AllowSignedContext: true,
		ClockSkew:          60 * time.Second,
		MaxContextAge:      300 * time.Second,
	}
}

type contextKey struct{}

// FromRequest is the tenant context the middleware verified for r.
func FromRequest(r *http.Request) (TenantContext, bool) {
	tc, ok := r.Context().Value(contextKey{}).(TenantContext)
	return tc, ok
}

// Require answers 401 unless the request carries a valid tenant context.
func Require(cfg Config, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tc, ok := Parse(r.Header, cfg, time.Now())
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"Unauthorized"}`))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), contextKey{}, tc)))
	})
}

// Parse tries the bearer token, then the signed context.
func Parse(h http.Header, cfg Config, now time.Time) (TenantContext, bool) {
	authz := h.Get("Authorization")
	if strings.HasPrefix(strings.ToLower(authz), "bearer ") && cfg.HMACSecret != "" {
		if raw := strings.TrimSpace(authz[7:]); raw != "" {
			if tc, err := parseHS256(raw, cfg, now); err == nil {
				tc.Via = "jwt"
				return tc, true
			}
		}
	}
	if cfg.AllowSignedContext && cfg.ContextHMACSecret != "" {
		if tc, ok := signedContext(h, cfg.ContextHMACSecret, cfg.MaxContextAge, now); ok {
			tc.Via = "signed-context"
			return tc, true
		}
	}
	return TenantContext{}, false
}

type claims struct {
	TenantContext
	Issuer    string          `json:"iss"`
	Audience  json.RawMessage `json:"aud"`
	ExpiresAt *float64        `json:"exp"`
	NotBefore *float64        `json:"nbf"`
}

func parseHS256(raw string, cfg Config, now time.Time) (TenantContext, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return TenantContext{}, errors.New("not a JWT")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodeSegment(parts[0], &header); err != nil || header.Alg != "HS256" {
		return TenantContext{}, errors.New("unexpected sign method")
	}
	signature, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return TenantContext{}, err
	}
	mac := hmac.New(sha256.New, []byte(cfg.HMACSecret))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(mac.Sum(nil), signature) {
		return TenantContext{}, errors.New("bad signature")
	}
	var c claims
	if err := decodeSegment(parts[1], &c); err != nil {
		return TenantContext{}, err
	}
	if c.Issuer != cfg.Issuer {
		return TenantContext{}, errors.New("wrong issuer")
	}
	if !audienceAccepted(c.Audience, cfg.AcceptAudiences) {
		return TenantContext{}, errors.New("wrong audience")
	}
	leeway := cfg.ClockSkew
	if leeway <= 0 {
		leeway = 60 * time.Second
	}
	if c.ExpiresAt != nil && now.After(unix(*c.ExpiresAt).Add(leeway)) {
		return TenantContext{}, errors.New("expired")
	}
	if c.NotBefore != nil && now.Add(leeway).Before(unix(*c.NotBefore)) {
		return TenantContext{}, errors.New("not yet valid")
	}
	return c.TenantContext, nil
}

func decodeSegment(segment string, into any) error {
	data, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, into)
}

// audienceAccepted: "aud" is a string or a list; one accepted audience is enough.
func audienceAccepted(raw json.RawMessage, accepted []string) bool {
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		var one string
		if json.Unmarshal(raw, &one) != nil {
			return false
		}
		list = []string{one}
	}
	for _, have := range list {
		for _, want := range accepted {
			if have == want {
				return true
			}
		}
	}
	return false
}

func unix(seconds float64) time.Time {
	return time.Unix(0, int64(seconds*float64(time.Second)))
}

// signedContext: X-PowerX-CTX is base64 (standard, padded) of the JSON context, and
// X-PowerX-CTX-SIG the hex HMAC-SHA256 of that base64 text; older than maxAge: refused.
func signedContext(h http.Header, secret string, maxAge time.Duration, now time.Time) (TenantContext, bool) {
	encoded, signature := h.Get("X-PowerX-CTX"), h.Get("X-PowerX-CTX-SIG")
	if encoded == "" || signature == "" {
		return TenantContext{}, false
	}
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return TenantContext{}, false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(encoded))
	if !hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(signature)) {
		return TenantContext{}, false
	}
	var body struct {
		TenantContext
		TS int64 `json:"ts"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return TenantContext{}, false
	}
	if maxAge > 0 && now.Unix()-body.TS > int64(maxAge/time.Second) {
		return TenantContext{}, false
	}
	return body.TenantContext, true
}
