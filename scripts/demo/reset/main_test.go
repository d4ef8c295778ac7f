package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A brand-new broker has no group coordinator yet: DeleteGroups answers
// COORDINATOR_NOT_AVAILABLE for a while. The reset waits it out instead of failing the demo's
// first run.
func TestForgetWindowJobRetriesCoordinatorNotAvailable(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The coordinator shows up only after a while (kgo's own retries of a request give up
	// sooner): until then both the coordinator lookup and the deletion are refused.
	ready := time.Now().Add(3 * time.Second)
	var calls atomic.Int32
	c.ControlKey(kmsg.FindCoordinator.Int16(), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if time.Now().After(ready) {
			return nil, nil, false
		}
		req := kreq.(*kmsg.FindCoordinatorRequest)
		resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		for _, k := range req.CoordinatorKeys {
			r := kmsg.NewFindCoordinatorResponseCoordinator()
			r.Key = k
			r.ErrorCode = kerr.CoordinatorNotAvailable.Code
			resp.Coordinators = append(resp.Coordinators, r)
		}
		return resp, nil, true
	})
	c.ControlKey(kmsg.DeleteGroups.Int16(), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		calls.Add(1)
		if time.Now().After(ready) {
			return nil, nil, false
		}
		req := kreq.(*kmsg.DeleteGroupsRequest)
		resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
		for _, g := range req.Groups {
			r := kmsg.NewDeleteGroupsResponseGroup()
			r.Group = g
			r.ErrorCode = kerr.CoordinatorNotAvailable.Code
			resp.Groups = append(resp.Groups, r)
		}
		return resp, nil, true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := forgetWindowJob(ctx, c.ListenAddrs(), "orders_per_customer"); err != nil {
		t.Fatalf("forgetWindowJob on a broker without a coordinator yet: %v", err)
	}
	if time.Now().Before(ready) {
		t.Fatal("forgetWindowJob returned before the coordinator was available")
	}
	t.Logf("DeleteGroups sent %d time(s)", calls.Load())
}

// A group that does not exist (the first run ever) is already forgotten.
func TestForgetWindowJobGroupNotFound(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := forgetWindowJob(ctx, c.ListenAddrs(), "never_ran"); err != nil {
		t.Fatalf("forgetWindowJob of a job that never ran: %v", err)
	}
}
