package health

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"
)

// Failed lists the pipelines that have been failed (stopped on an error retrying cannot fix)
// for at least d, with why; sorted by name.
func (r *Registry) Failed(d time.Duration) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	var out []string
	for name, s := range r.states {
		if s.Phase == "failed" && now.Sub(s.Since) >= d {
			out = append(out, fmt.Sprintf("%s failed %s ago: %s", describe(name), now.Sub(s.Since).Round(time.Second), s.Reason))
		}
	}
	sort.Strings(out)
	return out
}

// LiveHandler answers /healthz: 200 while the process serves, and 503 once a pipeline has been
// failed for failAfter (0: never), naming it and why. A failed pipeline stays stopped (its
// error is one retrying cannot fix, and the other pipelines go on); failing liveness lets a
// container platform restart cdcd, which retries the pipeline from its committed position
// once the cause is fixed (and shows as a restart loop while it is not).
func (r *Registry) LiveHandler(failAfter time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if failAfter > 0 {
			if failed := r.Failed(failAfter); len(failed) > 0 {
				w.WriteHeader(http.StatusServiceUnavailable)
				for _, f := range failed {
					_, _ = io.WriteString(w, f+"\n")
				}
				_, _ = fmt.Fprintf(w, "(http.fail_liveness_after is %s: cdcd is restarted to retry; fix the cause, see /readyz)\n", failAfter)
				return
			}
		}
		_, _ = io.WriteString(w, "ok\n")
	})
}
