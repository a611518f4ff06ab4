package pki

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"
)

// listNodesMethod is swarmkit's Control/ListNodes RPC (api/control.proto).
const listNodesMethod = "/docker.swarmkit.v1.Control/ListNodes"

// defaultControlTimeout bounds one ListNodes call: the answer comes from the
// manager's in-memory store, so a slow answer means a stuck manager.
const defaultControlTimeout = 10 * time.Second

// maxListNodesBytes bounds the response: a node record is a few KiB, so 64
// MiB is thousands of nodes and well above grpc's 4 MiB default.
const maxListNodesBytes = 64 << 20

// ControlClient reads node certificates from a manager's swarmkit control
// socket (`<exec-root>/swarm/control.sock`).
//
// It does not import swarmkit's generated api package: that package pulls in
// gogo/protobuf and etcd's raft for one message. ListNodes needs an empty
// request and three fields of the response (Node.id = 1, Node.certificate =
// 8, Certificate.certificate = 4), which protowire decodes directly.
//
// The socket speaks gRPC over TLS with the manager's node certificate; the
// socket's file permissions are the access control, so the certificate is
// not verified (as swarmctl does). The TLS handshake is done by the dialer and
// grpc sees a plain connection: grpc-go's TLS credentials refuse a server that
// selects no ALPN protocol ("missing selected ALPN property"), which dockerd's
// swarmkit does after a certificate reissue, and GRPC_ENFORCE_ALPN_ENABLED is
// read once at grpc's init, too early to set from code.
//
// Node.Certificate is the certificate the CA recorded for the node. Seen on
// dockerd 20.10: right after a join it can be a second signature of the same
// CSR (same key, same validity to the minute) with a different serial than the
// file the node keeps; the validity figures agree, the serial may not. A
// manager's TLS probe shows the certificate it actually serves.
type ControlClient struct {
	Socket  string
	Timeout time.Duration // per call; defaultControlTimeout when zero
}

var _ CertLister = (*ControlClient)(nil)

// NodeCertificates calls ListNodes and returns node ID → certificate PEM.
func (c *ControlClient) NodeCertificates(ctx context.Context) (map[string][]byte, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = defaultControlTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	socket := c.Socket
	dial := func(ctx context.Context, _ string) (net.Conn, error) {
		var d net.Dialer
		raw, err := d.DialContext(ctx, "unix", socket)
		if err != nil {
			return nil, err
		}
		//nolint:gosec // unix socket guarded by file permissions; swarmctl skips verification too
		conn := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12})
		if err := conn.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		return conn, nil
	}
	cc, err := grpc.NewClient("passthrough:///control.sock",
		grpc.WithContextDialer(dial),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxListNodesBytes)),
	)
	if err != nil {
		return nil, fmt.Errorf("connecting to control socket %s: %w", c.Socket, err)
	}
	defer func() { _ = cc.Close() }()

	var resp rawMessage
	if err := cc.Invoke(ctx, listNodesMethod, rawMessage{}, &resp, grpc.ForceCodec(rawCodec{})); err != nil {
		return nil, fmt.Errorf("listing nodes on control socket %s: %w (is it a manager's control.sock, mounted read-write?)", c.Socket, err)
	}
	return DecodeListNodes(resp)
}

// rawMessage is a protobuf message kept as its wire bytes.
type rawMessage []byte

// rawCodec hands wire bytes to and from grpc unchanged.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case rawMessage:
		return m, nil
	case *rawMessage:
		return *m, nil
	}
	return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(*rawMessage)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	*m = append((*m)[:0], data...)
	return nil
}

// errMalformed reports a ListNodes response that does not parse.
var errMalformed = errors.New("malformed ListNodes response")

// DecodeListNodes decodes a swarmkit ListNodesResponse (repeated Node nodes =
// 1) into node ID → Node.Certificate.Certificate. Fields it does not need are
// skipped, so newer swarmkit versions decode too.
func DecodeListNodes(b []byte) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		id, cert, err := decodeNode(v)
		if err != nil {
			return err
		}
		if id != "" {
			out[id] = cert
		}
		return nil
	})
	return out, err
}

func decodeNode(b []byte) (id string, cert []byte, err error) {
	err = eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType: // Node.id
			id = string(v)
		case num == 8 && typ == protowire.BytesType: // Node.certificate (api.Certificate)
			return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
				if num == 4 && typ == protowire.BytesType { // Certificate.certificate
					cert = append([]byte(nil), v...)
				}
				return nil
			})
		}
		return nil
	})
	return id, cert, err
}

// eachField walks the top-level fields of a message. v is the payload of a
// length-delimited field and nil for the other wire types.
func eachField(b []byte, fn func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %v", errMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		if typ == protowire.BytesType {
			v, n = protowire.ConsumeBytes(b)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d: %v", errMalformed, num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, typ, v); err != nil {
			return err
		}
	}
	return nil
}
