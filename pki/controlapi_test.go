package pki

import (
	"crypto/tls"
	"errors"
	"net"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// encodeNode builds a swarmkit Node message with the fields DecodeListNodes
// reads plus some it must skip.
func encodeNode(id string, cert []byte) []byte {
	var certMsg []byte
	certMsg = protowire.AppendTag(certMsg, 1, protowire.VarintType) // role
	certMsg = protowire.AppendVarint(certMsg, 1)
	certMsg = protowire.AppendTag(certMsg, 2, protowire.BytesType) // csr
	certMsg = protowire.AppendBytes(certMsg, []byte("csr bytes"))
	if cert != nil {
		certMsg = protowire.AppendTag(certMsg, 4, protowire.BytesType)
		certMsg = protowire.AppendBytes(certMsg, cert)
	}
	certMsg = protowire.AppendTag(certMsg, 5, protowire.BytesType) // cn
	certMsg = protowire.AppendString(certMsg, id)

	var n []byte
	n = protowire.AppendTag(n, 1, protowire.BytesType)
	n = protowire.AppendString(n, id)
	n = protowire.AppendTag(n, 2, protowire.BytesType) // meta
	n = protowire.AppendBytes(n, []byte{0x0a, 0x02, 0x08, 0x05})
	n = protowire.AppendTag(n, 8, protowire.BytesType)
	n = protowire.AppendBytes(n, certMsg)
	n = protowire.AppendTag(n, 9, protowire.VarintType) // role
	n = protowire.AppendVarint(n, 1)
	n = protowire.AppendTag(n, 11, protowire.VarintType) // VXLANUDPPort
	n = protowire.AppendVarint(n, 4789)
	n = protowire.AppendTag(n, 12, protowire.Fixed64Type) // a field from the future
	n = protowire.AppendFixed64(n, 42)
	return n
}

func encodeListNodes(nodes ...[]byte) []byte {
	var b []byte
	for _, n := range nodes {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, n)
	}
	return b
}

func TestDecodeListNodes(t *testing.T) {
	resp := encodeListNodes(encodeNode("n1", []byte("PEM1")), encodeNode("n2", nil))
	got, err := DecodeListNodes(resp)
	if err != nil {
		t.Fatalf("DecodeListNodes = %v", err)
	}
	if len(got) != 2 || string(got["n1"]) != "PEM1" || got["n2"] != nil {
		t.Errorf("DecodeListNodes = %q; want n1:PEM1, n2:empty", got)
	}
	if got, err := DecodeListNodes(nil); err != nil || len(got) != 0 {
		t.Errorf("DecodeListNodes(empty) = %v, %v; want empty map", got, err)
	}
	if _, err := DecodeListNodes(resp[:len(resp)-3]); !errors.Is(err, errMalformed) {
		t.Errorf("DecodeListNodes(truncated) = %v; want errMalformed", err)
	}
}

// TestControlClient serves ListNodes over TLS on a unix socket, as a
// manager's control.sock does, and reads it with the real client.
func TestControlClient(t *testing.T) {
	ca := newCA(t, p256(t), 1, "swarm-ca", testNow.Add(-day), testNow.Add(7000*day))
	leaf := ca.leaf(t, 5, "m1", RoleManager, testNow.Add(-day), testNow.Add(89*day))
	serverCert, _ := tlsCert(t, ca, 98, "m1", RoleManager)

	sock := filepath.Join(t.TempDir(), "control.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	resp := encodeListNodes(encodeNode("m1", []byte(pemOf(leaf))), encodeNode("w1", nil))
	var gotMethod string
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12})),
		grpc.ForceServerCodec(rawCodec{}),
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			gotMethod, _ = grpc.MethodFromServerStream(stream)
			var in rawMessage
			if err := stream.RecvMsg(&in); err != nil {
				return err
			}
			if gotMethod != listNodesMethod {
				return status.Error(codes.Unimplemented, "no")
			}
			return stream.SendMsg(rawMessage(resp))
		}),
	)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	c := &ControlClient{Socket: sock}
	got, err := c.NodeCertificates(t.Context())
	if err != nil {
		t.Fatalf("NodeCertificates = %v", err)
	}
	if gotMethod != listNodesMethod {
		t.Errorf("method = %q; want %q", gotMethod, listNodesMethod)
	}
	if l, err := ParseCertificate(got["m1"]); err != nil || SerialHex(l) != "5" {
		t.Errorf("m1 cert = %v; want serial 5", err)
	}
	if v, ok := got["w1"]; !ok || len(v) != 0 {
		t.Errorf("w1 = %q, %v; want present and empty", v, ok)
	}

	bad := &ControlClient{Socket: filepath.Join(t.TempDir(), "missing.sock"), Timeout: 500e6}
	if _, err := bad.NodeCertificates(t.Context()); err == nil {
		t.Errorf("NodeCertificates(missing socket) = nil error")
	}
}
