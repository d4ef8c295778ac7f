package health

// Fleet is this instance's membership in a fleet (fleet mode): /readyz shows it, and the
// instance's pipelines are those the group assigned to it.
type Fleet struct {
	Group     string   `json:"group"`
	Instance  string   `json:"instance"`
	Joined    bool     `json:"joined"`
	Pipelines []string `json:"pipelines"`
	Problem   string   `json:"problem,omitempty"`
}

// SetFleet records this instance's fleet membership. From then on the registry is ready only
// while the instance is in its group and every pipeline it runs is ready; an instance the
// group gave no pipeline is ready.
func (r *Registry) SetFleet(f Fleet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f.Pipelines = append([]string{}, f.Pipelines...)
	f.Problem = r.clean(f.Problem)
	r.fleet = &f
}

// Fleet returns this instance's fleet membership (nil: not in fleet mode).
func (r *Registry) Fleet() *Fleet {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fleet == nil {
		return nil
	}
	f := *r.fleet
	f.Pipelines = append([]string{}, f.Pipelines...)
	return &f
}

// Add starts tracking a pipeline this instance now runs ("starting"); it keeps the state of
// one already tracked.
func (r *Registry) Add(pipeline string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.states[pipeline]; !ok {
		r.states[pipeline] = State{Phase: "starting", Reason: "not connected yet", Since: r.now()}
	}
}

// Remove stops tracking a pipeline this instance no longer runs (it moved to another instance
// of the fleet).
func (r *Registry) Remove(pipeline string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.states, pipeline)
}
