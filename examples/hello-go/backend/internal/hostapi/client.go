// Package hostapi calls the PowerX host API from inside the plugin: as the plugin
// (POWERX_PLUGIN_TOKEN), for the tenant of the request being served (its
// X-PowerX-Tenant and X-PowerX-Grant headers). In the simulator's sandbox the host is
// reached over the unix socket POWERX_HOST_SOCKET; elsewhere at POWERX_HOST_URL.
package hostapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// Client calls /host/api.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// FromEnv builds the client from what the host puts in the plugin's environment.
func FromEnv() *Client {
	transport := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8}
	if socket := os.Getenv("POWERX_HOST_SOCKET"); socket != "" {
		transport.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, "unix", socket)
		}
	}
	return &Client{
		base:  strings.TrimRight(os.Getenv("POWERX_HOST_URL"), "/"),
		token: os.Getenv("POWERX_PLUGIN_TOKEN"),
		http:  &http.Client{Transport: transport, Timeout: 10 * time.Second},
	}
}

// Error is the host's refusal: its status and {"error", "message", "fix"}.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"error"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Get calls GET /host/api<path> for the tenant of incoming and decodes the answer.
func (c *Client) Get(incoming *http.Request, path string, into any) error {
	request, err := http.NewRequestWithContext(incoming.Context(), http.MethodGet, c.base+"/host/api"+path, nil)
	if err != nil {
		return err
	}
	request.Header.Set("Authorization", "Bearer "+c.token)
	for _, name := range []string{"X-PowerX-Tenant", "X-PowerX-Grant"} {
		if value := incoming.Header.Get(name); value != "" {
			request.Header.Set(name, value)
		}
	}
	response, err := c.http.Do(request)
	if err != nil {
		return err
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	if err != nil {
		return err
	}
	if response.StatusCode >= 400 {
		refusal := &Error{Status: response.StatusCode, Code: "host_error", Message: string(body)}
		_ = json.Unmarshal(body, refusal)
		return refusal
	}
	return json.Unmarshal(body, into)
}
