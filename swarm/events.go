package swarm

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// Object types of the engine's event stream the controller follows.
const (
	EventService = "service"
	EventSecret  = "secret"
	EventConfig  = "config"
	EventNetwork = "network"
	EventNode    = "node"
)

// EventTypes are the object types Events subscribes to: the swarm objects a domain owns.
var EventTypes = []string{EventService, EventSecret, EventConfig, EventNetwork, EventNode}

// Event is one change the engine reports: an object of Type (service, secret, config, network, node) was
// created, updated or removed (Action). Name is the object's name where the engine gives one; Time is when
// the engine saw it. No attribute value other than the name is kept: a label could hold anything.
type Event struct {
	Type   string
	Action string
	ID     string
	Name   string
	Time   time.Time
}

// ErrEventStreamEnded is what Events' error channel carries when the engine closed the stream cleanly.
var ErrEventStreamEnded = errors.New("the engine closed the event stream")

// Events subscribes to the engine's events about services, secrets, configs, networks and nodes (local
// scope networks included: the engine filters by type only). Events arrive on the first channel until ctx
// ends or the stream breaks; then the second channel carries why (ctx's error, ErrEventStreamEnded, or the
// engine's error) and both close. The subscription is made before Events returns, so nothing the engine
// does after the call is missed while the stream lasts.
func (c *Client) Events(ctx context.Context) (<-chan Event, <-chan error) {
	f := make(client.Filters)
	for _, t := range EventTypes {
		f = f.Add("type", t)
	}
	res := c.api.Events(ctx, client.EventsListOptions{Filters: f})
	out := make(chan Event)
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		defer close(out)
		for {
			select {
			case m, ok := <-res.Messages:
				if !ok {
					errc <- ErrEventStreamEnded
					return
				}
				if m.Type == events.NetworkEventType && (m.Action == events.ActionConnect || m.Action == events.ActionDisconnect) {
					continue // a container joined or left a network: the network itself did not change
				}
				select {
				case out <- toEvent(m):
				case <-ctx.Done():
					errc <- ctx.Err()
					return
				}
			case err, ok := <-res.Err:
				switch {
				case !ok || errors.Is(err, io.EOF):
					errc <- ErrEventStreamEnded
				case ctx.Err() != nil:
					errc <- ctx.Err()
				default:
					errc <- mapErr("following the engine's events", err)
				}
				return
			}
		}
	}()
	return out, errc
}

func toEvent(m events.Message) Event {
	e := Event{Type: string(m.Type), Action: string(m.Action), ID: m.Actor.ID, Name: m.Actor.Attributes["name"]}
	if m.TimeNano != 0 {
		e.Time = time.Unix(0, m.TimeNano)
	} else if m.Time != 0 {
		e.Time = time.Unix(m.Time, 0)
	}
	return e
}
