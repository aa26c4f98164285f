package rpc

import (
	"context"
	"fmt"
	"slices"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/events"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
	"github.com/loyalty-ledger/loyalty/webhooks"
)

type webhookService struct{ *Server }

var _ loyaltyv1connect.WebhookServiceHandler = webhookService{}

// maxOverlapSeconds bounds a rotation's overlap (webhooks.MaxOverlap).
const maxOverlapSeconds = int32(webhooks.MaxOverlap / time.Second)

// checkEventTypes names the first type of a list that is not one, or is
// there twice, by its index (the store names only the list).
func checkEventTypes(field string, types []string) error {
	if len(types) > len(events.Types) {
		return badField(field, "at most %d, one of each type", len(events.Types))
	}
	for i, t := range types {
		if !events.KnownType(t) {
			return badField(fmt.Sprintf("%s[%d]", field, i), "%q is not an event type (see events/SCHEMA.md)", clip(t))
		}
		if slices.Contains(types[:i], t) {
			return badField(fmt.Sprintf("%s[%d]", field, i), "%q is listed twice", clip(t))
		}
	}
	return nil
}

func (s webhookService) CreateWebhookEndpoint(ctx context.Context, req *connect.Request[loyaltyv1.CreateWebhookEndpointRequest]) (*connect.Response[loyaltyv1.CreateWebhookEndpointResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	if err := checkEventTypes("event_types", msg.GetEventTypes()); err != nil {
		return nil, err
	}
	if msg.GetPartnerId() != "" {
		if err := s.knownPartner(ctx, "partner_id", msg.GetPartnerId()); err != nil {
			return nil, s.toConnect(ctx, proc, err)
		}
	}
	ep, secret, err := s.webhooks.Create(ctx, caller(ctx).ID, msg.GetIdempotencyKey(), webhooks.CreateRequest{
		URL: msg.GetUrl(), EventTypes: msg.GetEventTypes(), PartnerID: msg.GetPartnerId(), Description: msg.GetDescription(),
		BatchSize: int(msg.GetBatchSize())})
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	if secret != "" {
		s.log.InfoContext(ctx, "webhook endpoint created", "endpoint_id", ep.ID, "partner_id", ep.PartnerID, "by", caller(ctx).ID)
	}
	return connect.NewResponse(&loyaltyv1.CreateWebhookEndpointResponse{Endpoint: protoEndpoint(ep), Secret: secret}), nil
}

func (s webhookService) ListWebhookEndpoints(ctx context.Context, req *connect.Request[loyaltyv1.ListWebhookEndpointsRequest]) (*connect.Response[loyaltyv1.ListWebhookEndpointsResponse], error) {
	list, next, err := s.webhooks.List(ctx, int(req.Msg.GetPageSize()), req.Msg.GetPageToken())
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	out := &loyaltyv1.ListWebhookEndpointsResponse{NextPageToken: next}
	for _, ep := range list {
		out.Endpoints = append(out.Endpoints, protoEndpoint(ep))
	}
	return connect.NewResponse(out), nil
}

func (s webhookService) GetWebhookEndpoint(ctx context.Context, req *connect.Request[loyaltyv1.GetWebhookEndpointRequest]) (*connect.Response[loyaltyv1.GetWebhookEndpointResponse], error) {
	ep, err := s.webhooks.Get(ctx, req.Msg.GetEndpointId())
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&loyaltyv1.GetWebhookEndpointResponse{Endpoint: protoEndpoint(ep)}), nil
}

func (s webhookService) UpdateWebhookEndpoint(ctx context.Context, req *connect.Request[loyaltyv1.UpdateWebhookEndpointRequest]) (*connect.Response[loyaltyv1.UpdateWebhookEndpointResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	update := webhooks.UpdateRequest{URL: msg.Url, Description: msg.Description, Paused: msg.Paused}
	if msg.BatchSize != nil {
		size := int(msg.GetBatchSize())
		update.BatchSize = &size
	}
	if msg.GetEventTypes() != nil {
		types := msg.GetEventTypes().GetEventTypes()
		if err := checkEventTypes("event_types.event_types", types); err != nil {
			return nil, err
		}
		update.EventTypes = &types
	}
	ep, err := s.webhooks.Update(ctx, caller(ctx).ID, msg.GetIdempotencyKey(), msg.GetEndpointId(), update)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	s.log.InfoContext(ctx, "webhook endpoint updated", "endpoint_id", ep.ID, "paused", ep.Paused, "by", caller(ctx).ID)
	return connect.NewResponse(&loyaltyv1.UpdateWebhookEndpointResponse{Endpoint: protoEndpoint(ep)}), nil
}

func (s webhookService) DeleteWebhookEndpoint(ctx context.Context, req *connect.Request[loyaltyv1.DeleteWebhookEndpointRequest]) (*connect.Response[loyaltyv1.DeleteWebhookEndpointResponse], error) {
	if err := s.webhooks.Delete(ctx, caller(ctx).ID, req.Msg.GetIdempotencyKey(), req.Msg.GetEndpointId()); err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	s.log.InfoContext(ctx, "webhook endpoint deleted", "endpoint_id", req.Msg.GetEndpointId(), "by", caller(ctx).ID)
	return connect.NewResponse(&loyaltyv1.DeleteWebhookEndpointResponse{}), nil
}

func (s webhookService) RotateWebhookSecret(ctx context.Context, req *connect.Request[loyaltyv1.RotateWebhookSecretRequest]) (*connect.Response[loyaltyv1.RotateWebhookSecretResponse], error) {
	msg := req.Msg
	if o := msg.GetOverlapSeconds(); o < 0 || o > maxOverlapSeconds {
		return nil, badField("overlap_seconds", "must be 0 (a day) to %d (a week)", maxOverlapSeconds)
	}
	ep, secret, err := s.webhooks.RotateSecret(ctx, caller(ctx).ID, msg.GetIdempotencyKey(), msg.GetEndpointId(),
		time.Duration(msg.GetOverlapSeconds())*time.Second)
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	if secret != "" {
		overlap := time.Duration(msg.GetOverlapSeconds()) * time.Second
		if overlap == 0 {
			overlap = webhooks.DefaultOverlap
		}
		s.log.InfoContext(ctx, "webhook secret rotated", "endpoint_id", ep.ID, "overlap_seconds", int64(overlap/time.Second), "by", caller(ctx).ID)
	}
	return connect.NewResponse(&loyaltyv1.RotateWebhookSecretResponse{Endpoint: protoEndpoint(ep), Secret: secret}), nil
}

var deliveryStatuses = map[string]loyaltyv1.WebhookDeliveryStatus{
	webhooks.StatusPending:   loyaltyv1.WebhookDeliveryStatus_WEBHOOK_DELIVERY_STATUS_PENDING,
	webhooks.StatusDelivered: loyaltyv1.WebhookDeliveryStatus_WEBHOOK_DELIVERY_STATUS_DELIVERED,
	webhooks.StatusDead:      loyaltyv1.WebhookDeliveryStatus_WEBHOOK_DELIVERY_STATUS_DEAD,
}

var deliveryStatusOf = invert(deliveryStatuses)

func (s webhookService) ListWebhookDeliveries(ctx context.Context, req *connect.Request[loyaltyv1.ListWebhookDeliveriesRequest]) (*connect.Response[loyaltyv1.ListWebhookDeliveriesResponse], error) {
	msg := req.Msg
	var filter webhooks.DeliveryFilter
	if msg.GetStatus() != loyaltyv1.WebhookDeliveryStatus_WEBHOOK_DELIVERY_STATUS_UNSPECIFIED {
		filter.Status = deliveryStatusOf[msg.GetStatus()]
	}
	list, next, err := s.webhooks.ListDeliveries(ctx, msg.GetEndpointId(), filter, int(msg.GetPageSize()), msg.GetPageToken())
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	out := &loyaltyv1.ListWebhookDeliveriesResponse{NextPageToken: next}
	for _, d := range list {
		out.Deliveries = append(out.Deliveries, protoDelivery(d))
	}
	return connect.NewResponse(out), nil
}

func (s webhookService) RedeliverWebhookEvent(ctx context.Context, req *connect.Request[loyaltyv1.RedeliverWebhookEventRequest]) (*connect.Response[loyaltyv1.RedeliverWebhookEventResponse], error) {
	msg := req.Msg
	if msg.GetEventId() == "" {
		return nil, badField("event_id", "is required")
	}
	eventID, err := uuid.Parse(msg.GetEventId())
	if err != nil || eventID == uuid.Nil {
		return nil, badField("event_id", "must be an event's id, a UUID")
	}
	d, err := s.webhooks.Redeliver(ctx, caller(ctx).ID, msg.GetIdempotencyKey(), msg.GetEndpointId(), eventID)
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	s.log.InfoContext(ctx, "webhook event redelivered", "endpoint_id", d.EndpointID, "event_id", d.EventID, "by", caller(ctx).ID)
	return connect.NewResponse(&loyaltyv1.RedeliverWebhookEventResponse{Delivery: protoDelivery(d)}), nil
}

func protoEndpoint(ep webhooks.Endpoint) *loyaltyv1.WebhookEndpoint {
	out := &loyaltyv1.WebhookEndpoint{EndpointId: ep.ID, Url: ep.URL, EventTypes: ep.EventTypes, PartnerId: ep.PartnerID,
		Description: ep.Description, Paused: ep.Paused, BatchSize: int32(ep.BatchSize), CreatedAt: timestamppb.New(ep.CreatedAt),
		UpdatedAt: timestamppb.New(ep.UpdatedAt), CreatedByKeyId: ep.CreatedBy}
	if !ep.SecretRotatedAt.IsZero() {
		out.SecretRotatedAt = timestamppb.New(ep.SecretRotatedAt)
	}
	return out
}

func protoDelivery(d webhooks.Delivery) *loyaltyv1.WebhookDelivery {
	out := &loyaltyv1.WebhookDelivery{EndpointId: d.EndpointID, EventId: d.EventID.String(), EventType: d.EventType,
		Position: d.Position, Subject: d.Subject, Status: deliveryStatuses[d.Status], Attempts: int32(d.Attempts),
		LastStatusCode: int32(d.LastStatusCode), LastError: d.LastError, LastLatencyMs: d.LastLatency.Milliseconds(),
		CreatedAt: timestamppb.New(d.CreatedAt)}
	for _, t := range []struct {
		at  time.Time
		set func(*timestamppb.Timestamp)
	}{
		{d.NextAttemptAt, func(ts *timestamppb.Timestamp) { out.NextAttemptAt = ts }},
		{d.LastAttemptAt, func(ts *timestamppb.Timestamp) { out.LastAttemptAt = ts }},
		{d.DeliveredAt, func(ts *timestamppb.Timestamp) { out.DeliveredAt = ts }},
	} {
		if !t.at.IsZero() {
			t.set(timestamppb.New(t.at))
		}
	}
	return out
}
