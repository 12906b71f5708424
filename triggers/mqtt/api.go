package mqtt

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// api is a client of tidewatch's own API.
type api struct {
	cfg    Config
	client *http.Client // bounded requests
	stream *http.Client // the event stream: no timeout
}

func newAPI(cfg Config) *api {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.APITLS != nil {
		tr.TLSClientConfig = cfg.APITLS
	}
	return &api{cfg: cfg, client: &http.Client{Transport: tr, Timeout: apiTimeout}, stream: &http.Client{Transport: tr}}
}

// apiError is an answer of the API other than 2xx.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message) }

func (a *api) do(ctx context.Context, c *http.Client, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.cfg.APIURL.String()+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.cfg.APIToken != "" {
		req.Header.Set("Authorization", "Bearer "+a.cfg.APIToken)
	}
	req.Header.Set("User-Agent", "tidewatch-mqtt")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, unwrapURL(err))
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			msg = e.Error.Message
		}
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		return nil, &apiError{Status: resp.StatusCode, Message: msg}
	}
	return resp, nil
}

func (a *api) getJSON(ctx context.Context, path string, v any) error {
	resp, err := a.do(ctx, a.client, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: decoding: %w", path, err)
	}
	return nil
}

// containers lists every watched container.
func (a *api) containers(ctx context.Context) ([]Container, error) {
	var out struct {
		Containers []Container `json:"containers"`
	}
	err := a.getJSON(ctx, "/api/containers", &out)
	return out.Containers, err
}

// deployers lists the deploying trigger instances, in the API's order.
func (a *api) deployers(ctx context.Context) ([]string, error) {
	var out struct {
		Triggers []struct {
			Name    string `json:"name"`
			Deploys bool   `json:"deploys"`
		} `json:"triggers"`
	}
	if err := a.getJSON(ctx, "/api/triggers", &out); err != nil {
		return nil, err
	}
	var names []string
	for _, t := range out.Triggers {
		if t.Deploys {
			names = append(names, t.Name)
		}
	}
	return names, nil
}

// apply asks tidewatch to apply update id through trigger; it returns the
// delivery's ID.
func (a *api) apply(ctx context.Context, id int64, trigger string) (int64, error) {
	resp, err := a.do(ctx, a.client, http.MethodPost, fmt.Sprintf("/api/updates/%d/apply", id), map[string]string{"trigger": trigger})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Delivery struct {
			ID int64 `json:"id"`
		} `json:"delivery"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out)
	return out.Delivery.ID, nil
}

// events follows the API's event stream, calling onEvent with each event's
// type, until ctx ends or the stream breaks; connected is called once the
// stream is open.
func (a *api) events(ctx context.Context, connected func(), onEvent func(typ string)) error {
	resp, err := a.do(ctx, a.stream, http.MethodGet, "/api/events", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	connected()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if typ, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			onEvent(strings.TrimSpace(typ))
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("reading /api/events: %w", err)
	}
	return errors.New("the event stream ended")
}
