package fleet

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// View is the fleet as its group describes it, with partitions mapped back to the pipelines
// of a configuration.
type View struct {
	Group string
	State string // the group's state, lower case: stable, preparingrebalance, empty, ...
	// Protocol is the running members' protocol; Matches says whether it is the one of the
	// configuration's pipelines (true when no member runs).
	Protocol string
	Matches  bool
	Members  []Member // sorted by instance
	// Unassigned are the configuration's pipelines no member runs.
	Unassigned []string
}

// Member is one instance in the group.
type Member struct {
	Instance  string
	Host      string
	Pipelines []string // sorted
}

// Describe describes group and maps the partitions of topic its members were assigned to the
// pipelines (Order). A group that does not exist is an empty one.
func Describe(ctx context.Context, adm *kadm.Client, group, topic string, pipelines []string) (View, error) {
	order := Order(pipelines)
	groups, err := adm.DescribeGroups(ctx, group)
	if err == nil {
		err = groups.Error()
	}
	var gr kadm.DescribedGroup
	switch {
	case errors.Is(err, kerr.GroupIDNotFound):
		gr = kadm.DescribedGroup{Group: group, State: "Empty"}
	case err != nil:
		return View{}, err
	default:
		gr = groups[group]
	}
	v := View{Group: group, State: strings.ToLower(gr.State), Protocol: gr.Protocol,
		Matches: len(gr.Members) == 0 || gr.Protocol == ProtocolName(order)}
	owned := map[string]bool{}
	for _, m := range gr.Members {
		mb := Member{Instance: strings.TrimPrefix(m.ClientID, ClientIDPrefix), Host: strings.TrimPrefix(m.ClientHost, "/")}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				if t.Topic != topic {
					continue
				}
				for _, p := range t.Partitions {
					if p >= 0 && int(p) < len(order) {
						mb.Pipelines = append(mb.Pipelines, order[p])
						owned[order[p]] = true
					}
				}
			}
		}
		sort.Strings(mb.Pipelines)
		v.Members = append(v.Members, mb)
	}
	slices.SortFunc(v.Members, func(a, b Member) int { return strings.Compare(a.Instance, b.Instance) })
	for _, p := range order {
		if !owned[p] {
			v.Unassigned = append(v.Unassigned, p)
		}
	}
	return v, nil
}
