package lambdafn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/apitap/apitap/events"
	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/orchestrator"
	"github.com/apitap/apitap/internal/remedy"
	"github.com/apitap/apitap/internal/summary"
)

// Function is one Lambda function's handler state, built once per
// container.
type Function struct {
	Name      string // "instance-events", "stack-events", "reconcile", "teardown"
	StackName string
	O         *orchestrator.Orchestrator
	Clock     orchestrator.Clock
	Log       *slog.Logger
	// Metrics receives one EMF line per invocation (stdout in Lambda).
	Metrics io.Writer
	// HTTP sends custom resource responses. Default http.DefaultClient.
	HTTP *http.Client
	// Remedy diagnoses failures, reports them once and remediates the
	// enabled classes; nil when the function has no diagnosis set up.
	Remedy *remedy.Engine
}

// diagnose runs a diagnosis, when the function has the engine; its error
// is logged, never fails the invocation (the events it reads are durable
// and the next failure event tries again).
func (f *Function) diagnose(what string, run func(*remedy.Engine) error) {
	if f.Remedy == nil {
		return
	}
	if err := run(f.Remedy); err != nil {
		f.Log.Error("diagnosing "+what, "err", err)
	}
}

// deadline turns the invocation's deadline into the orchestrator's clock.
func (f *Function) deadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return f.Clock.Now().Add(time.Until(d))
	}
	return time.Time{}
}

// report logs the invocation's summary and emits its metrics.
func (f *Function) report(trigger string, res *orchestrator.Result, start time.Time) {
	s := summary.Summary{Function: f.Name, Trigger: trigger}
	if res != nil {
		s.Desired, s.Actual, s.Created, s.Deleted, s.Kept = res.Desired, res.Actual, res.Created, res.Deleted, res.Kept
		s.Conflicts, s.Unsupported, s.Protected = len(res.Conflicts), len(res.Unsupported), len(res.Protected)
		s.Errors, s.APICalls = len(res.Errors), res.APICalls
		s.Adopted, s.Refused, s.UndocumentedErrors = res.Adopted, res.Refused, res.Fallbacks
		for _, p := range res.Conflicts {
			s.Add(summary.Detail{ENI: p.ENI, LB: p.LB, Action: summary.ActionConflict, Reason: p.Reason})
		}
		for _, p := range res.Unsupported {
			s.Add(summary.Detail{ENI: p.ENI, LB: p.LB, Action: summary.ActionUnsupported, Reason: p.Reason})
		}
		for _, p := range res.Problems {
			s.Add(summary.Detail{ENI: p.ENI, LB: p.LB, Action: summary.ActionUnsupported, Reason: p.Reason})
		}
		for _, d := range res.Protected {
			s.Add(summary.Detail{ENI: d.Session.ENI, Session: d.Session.ID, Action: summary.ActionProtected, Reason: d.Reason})
		}
		for _, err := range res.Errors {
			s.Add(summary.Detail{Action: summary.ActionError, Reason: err.Error()})
		}
	}
	s.Duration = f.Clock.Now().Sub(start)
	s.Log(f.Log)
	if f.Metrics != nil {
		if err := s.EMF(f.Metrics, contract.FunctionNamespace, map[string]string{contract.DimFunction: f.Name, contract.DimStack: f.StackName}); err != nil {
			f.Log.Error("writing metrics", "err", err)
		}
	}
}

// InstanceEvents handles instance state changes, Auto Scaling launches
// and terminations, CloudTrail target (de)registrations and ECS task state
// changes: the fast path that mirrors a new instance or task within
// seconds. Events may be late,
// repeated or reordered: every handler looks at AWS's current state.
func (f *Function) InstanceEvents(ctx context.Context, raw json.RawMessage) error {
	start := f.Clock.Now()
	e, err := events.Parse(raw)
	if err != nil {
		return err
	}
	dl := f.deadline(ctx)
	var res *orchestrator.Result
	trigger := e.Kind().String()
	switch e.Kind() {
	case events.EC2State:
		d, err := e.EC2StateChange()
		if err != nil {
			return err
		}
		trigger += " " + d.InstanceID + " " + d.State
		switch d.State {
		case events.StatePending, events.StateRunning:
			res = f.O.ReconcileInstances(ctx, []string{d.InstanceID}, dl)
		case events.StateStopping, events.StateStopped, events.StateShuttingDown, events.StateTerminated:
			res = f.O.RemoveInstances(ctx, []string{d.InstanceID}, dl)
		default:
			f.Log.Info("instance state not handled", "instance", d.InstanceID, "state", d.State)
		}
	case events.AutoScaling:
		d, err := e.AutoScalingActivity()
		if err != nil {
			return err
		}
		trigger += " " + d.EC2InstanceID + " " + e.DetailType
		switch e.DetailType {
		case events.DetailLaunchSuccessful:
			res = f.O.ReconcileLaunch(ctx, d.AutoScalingGroupName, d.EC2InstanceID, dl)
		case events.DetailTerminateSuccessful:
			res = f.O.RemoveInstances(ctx, []string{d.EC2InstanceID}, dl)
		default:
			// An application's Auto Scaling group failing is not ours to
			// act on, but it explains missing sessions: say so. The
			// fleet's own failures are diagnosed.
			f.Log.Warn("auto scaling activity failed", "group", d.AutoScalingGroupName, "instance", d.EC2InstanceID,
				"detail_type", e.DetailType, "status", d.StatusCode, "message", d.StatusMessage)
			if e.DetailType == events.DetailLaunchUnsuccessful {
				f.diagnose("a launch of "+d.AutoScalingGroupName, func(r *remedy.Engine) error {
					return r.LaunchFailed(ctx, d.AutoScalingGroupName, d.StatusCode, d.StatusMessage, d.Details.AvailabilityZone, e.Time)
				})
			}
		}
	case events.CloudTrailELB:
		call, err := e.CloudTrailCall()
		if err != nil {
			return err
		}
		trigger += " " + call.EventName
		if call.Failed() {
			f.Log.Info("ignoring failed load balancer call", "event", call.EventName, "error_code", call.ErrorCode)
			break
		}
		switch call.EventName {
		case events.EventRegisterTargets, events.EventDeregisterTargets:
			req, err := call.ELBv2Targets()
			if err != nil {
				return err
			}
			ids := make([]string, len(req.Targets))
			for i, t := range req.Targets {
				ids[i] = t.ID
			}
			if call.EventName == events.EventDeregisterTargets {
				res = f.O.ReconcileDeregistered(ctx, req.TargetGroupArn, ids, dl)
			} else {
				res = f.O.ReconcileTargets(ctx, req.TargetGroupArn, ids, dl)
			}
		case events.EventRegisterInstancesClassic, events.EventDeregisterInstancesClassic:
			req, err := call.ClassicInstances()
			if err != nil {
				return err
			}
			var ids []string
			for _, in := range req.Instances {
				ids = append(ids, in.InstanceID)
			}
			res = f.O.ReconcileClassic(ctx, req.LoadBalancerName, ids, dl)
		default:
			f.Log.Info("load balancer call not handled", "event", call.EventName)
		}
	case events.ECSTask:
		d, err := e.ECSTaskStateChange()
		if err != nil {
			return err
		}
		trigger += " " + d.TaskARN + " " + d.LastStatus
		switch d.LastStatus {
		case events.TaskRunning, events.TaskStopped:
			// A service registers its task with its target groups itself,
			// maybe after this event: look again a few times. A task
			// being stopped already will not be registered.
			await := d.Service() != "" && d.DesiredStatus == events.TaskRunning
			f.Log.Info("ecs task", "task", d.TaskARN, "status", d.LastStatus, "desired", d.DesiredStatus, "group", d.Group,
				"version", d.Version, "enis", d.ENIIDs(), "ips", d.IPs())
			res = f.O.ReconcileTask(ctx, orchestrator.Task{ARN: d.TaskARN, Running: d.LastStatus == events.TaskRunning,
				AwaitTarget: await, ENIs: d.ENIIDs(), IPs: d.IPs()}, dl)
		default:
			f.Log.Info("task status not handled", "task", d.TaskARN, "status", d.LastStatus)
		}
	default:
		f.Log.Info("event not handled by this function", "kind", e.Kind().String(), "detail_type", e.DetailType, "source", e.Source)
	}
	f.report(trigger, res, start)
	return nil
}

// StackEvents handles CloudFormation status changes of its own stack: a
// completed create or update starts the full reconcile (the first attach
// after deploy; selection changes arrive as stack updates).
func (f *Function) StackEvents(ctx context.Context, raw json.RawMessage) error {
	start := f.Clock.Now()
	e, err := events.Parse(raw)
	if err != nil {
		return err
	}
	if e.Kind() == events.ResourceStatus {
		// A resource's failure carries the reason; the stack's own
		// failure status follows and is diagnosed the same way, once.
		d, err := e.ResourceStatusChange()
		if err != nil {
			return err
		}
		if events.StackNameFromID(d.StackID) == f.StackName && strings.HasSuffix(d.Status, "_FAILED") {
			f.diagnose("stack "+f.StackName, func(r *remedy.Engine) error { return r.StackFailed(ctx, d.StackID, d.ClientRequestToken) })
		}
		f.report("resource "+d.LogicalResourceID+" "+d.Status, nil, start)
		return nil
	}
	if e.Kind() != events.StackStatus {
		f.Log.Info("event not handled by this function", "kind", e.Kind().String(), "detail_type", e.DetailType)
		f.report(e.Kind().String(), nil, start)
		return nil
	}
	d, err := e.StackStatusChange()
	if err != nil {
		return err
	}
	trigger := "stack " + d.Status
	if d.StackName() != f.StackName {
		f.Log.Info("status of another stack ignored", "stack", d.StackName())
		f.report("stack "+d.StackName()+" "+d.Status, nil, start)
		return nil
	}
	var res *orchestrator.Result
	defer func() { f.report(trigger, res, start) }()
	switch d.Status {
	case "CREATE_COMPLETE", "UPDATE_COMPLETE":
		res = f.O.Reconcile(ctx, f.deadline(ctx))
	case "CREATE_FAILED", "UPDATE_FAILED", "DELETE_FAILED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE",
		"UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_FAILED":
		f.Log.Error("stack operation failed", "stack", f.StackName, "status", d.Status, "reason", d.StatusReason)
		f.diagnose("stack "+f.StackName, func(r *remedy.Engine) error { return r.StackFailed(ctx, d.StackID, d.ClientRequestToken) })
	default:
		f.Log.Info("stack status", "stack", f.StackName, "status", d.Status)
	}
	return nil
}

// Reconcile is the scheduled full pass, and the entry for any event that
// asks for one.
func (f *Function) Reconcile(ctx context.Context, raw json.RawMessage) error {
	start := f.Clock.Now()
	trigger := "invoke"
	if e, err := events.Parse(raw); err == nil {
		trigger = e.Kind().String()
	}
	res := f.O.Reconcile(ctx, f.deadline(ctx))
	f.report(trigger, res, start)
	// Mirror health on the reconcile's schedule: unhealthy sniffers and
	// load balancers whose sessions carry no traffic.
	f.diagnose("mirror health", func(r *remedy.Engine) error { return r.Health(ctx) })
	if res.Left > 0 {
		// Work left for lack of time: the next pass at once, not in five
		// minutes (when "sessions" is enabled).
		f.diagnose("sessions left", func(r *remedy.Engine) error {
			return r.ReconcileNow(ctx, fmt.Sprintf("%d changes left at %s", res.Left, f.Clock.Now().UTC().Format(time.RFC3339)))
		})
	}
	if len(res.Errors) > 0 && res.Created+res.Deleted == 0 && res.Desired == 0 {
		// Nothing could be read: let Lambda count a failed invocation.
		return res.Err()
	}
	return nil
}

// cfnResponse is the body CloudFormation expects at ResponseURL.
type cfnResponse struct {
	Status             string         `json:"Status"`
	Reason             string         `json:"Reason,omitempty"`
	PhysicalResourceID string         `json:"PhysicalResourceId"`
	StackID            string         `json:"StackId"`
	RequestID          string         `json:"RequestId"`
	LogicalResourceID  string         `json:"LogicalResourceId"`
	Data               map[string]any `json:"Data,omitempty"`
}

// Teardown is the custom resource whose Delete removes every session the
// stack owns before the mirror target is deleted, so that cdk destroy does
// not fail on sessions created at run time. It always answers
// CloudFormation, or the stack operation would hang for an hour.
func (f *Function) Teardown(ctx context.Context, raw json.RawMessage) error {
	start := f.Clock.Now()
	req, err := events.ParseCustomResource(raw)
	if err != nil {
		return err
	}
	resp := cfnResponse{Status: "SUCCESS", PhysicalResourceID: req.PhysicalResourceID, StackID: req.StackID,
		RequestID: req.RequestID, LogicalResourceID: req.LogicalResourceID}
	if resp.PhysicalResourceID == "" {
		resp.PhysicalResourceID = f.StackName + "-teardown"
	}
	var res *orchestrator.Result
	if req.RequestType == events.RequestDelete {
		// Stop working well before Lambda's deadline, so that the answer
		// always goes out: without it CloudFormation waits an hour.
		work := ctx
		if d, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			work, cancel = context.WithDeadline(ctx, d.Add(-answerTime))
			defer cancel()
		}
		res = f.O.Teardown(work, f.deadline(work))
		// SUCCESS only when the last listings showed no session of ours:
		// errors on the way (a throttled call, a delete that was retried)
		// do not matter then, and foreign sessions never do.
		if !res.Complete {
			resp.Status = "FAILED"
			resp.Reason = fmt.Sprintf("removing the mirror sessions of stack %s: %d still listed, %d deleted, %d errors: %v (see the function's log)",
				f.StackName, res.Remaining, res.Deleted, len(res.Errors), errors.Join(res.Errors...))
			if len(resp.Reason) > 3500 {
				resp.Reason = resp.Reason[:3500] + "..."
			}
		}
		resp.Data = map[string]any{"Deleted": res.Deleted, "ForeignSessionsOnTarget": len(res.ForeignOnTarget)}
	}
	f.report("teardown "+req.RequestType, res, start)
	// The answer has its own time: the invocation's context may be spent.
	answer, cancel := context.WithTimeout(context.Background(), answerTime)
	defer cancel()
	return f.respond(answer, req.ResponseURL, resp)
}

// answerTime is kept for answering CloudFormation.
const answerTime = 15 * time.Second

// respond PUTs the custom resource response to the presigned URL.
func (f *Function) respond(ctx context.Context, url string, resp cfnResponse) error {
	body, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("answering CloudFormation: %w", err)
	}
	// The presigned S3 URL was signed without a content type.
	hreq.Header.Set("Content-Type", "")
	hreq.ContentLength = int64(len(body))
	client := f.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	hresp, err := client.Do(hreq)
	if err != nil {
		return fmt.Errorf("answering CloudFormation: %w", err)
	}
	defer hresp.Body.Close()
	if hresp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(hresp.Body, 512))
		return fmt.Errorf("answering CloudFormation: HTTP %d: %s", hresp.StatusCode, b)
	}
	f.Log.Info("answered CloudFormation", "status", resp.Status, "request", resp.RequestID)
	return nil
}
