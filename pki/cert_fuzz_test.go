package pki

import (
	"encoding/pem"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// FuzzParseCertificates: whatever PEM the engine hands over as a trust root or a node certificate, parsing
// it and reading its facts never panics, and an accepted certificate has a validity window and a key.
func FuzzParseCertificates(f *testing.F) {
	ca := newCA(f, p256(f), 1, "swarm-ca", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC))
	leaf := ca.leaf(f, 2, "node1", "swarm-manager", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC))
	f.Add([]byte(pemOf(ca.cert)))
	f.Add([]byte(pemOf(leaf) + pemOf(ca.cert)))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" + pemOf(leaf)))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x82, 0xff, 0xff}}))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := ParseCertificates(data)
		if err != nil {
			return
		}
		if len(certs) == 0 {
			t.Fatal("ParseCertificates() = no certificates and no error")
		}
		for _, c := range certs {
			facts := Facts(c)
			_ = facts.Validity()
			_ = SerialHex(c)
			algo, bits := KeyInfo(c)
			_, _ = WeakKey(algo, bits)
		}
	})
}

// FuzzDecodeListNodes: a swarmkit control-API answer (every node's certificate) that is truncated or
// hostile is an error or a map, never a panic, and each certificate it yields parses or fails cleanly.
func FuzzDecodeListNodes(f *testing.F) {
	ca := newCA(f, p256(f), 1, "swarm-ca", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC))
	certMsg := protowire.AppendBytes(protowire.AppendTag(nil, 4, protowire.BytesType), []byte(pemOf(ca.cert)))
	node := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("node1"))
	node = protowire.AppendBytes(protowire.AppendTag(node, 8, protowire.BytesType), certMsg)
	resp := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), node)
	f.Add(resp)
	f.Add(resp[:len(resp)/2])
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeListNodes(data)
		if err != nil {
			return
		}
		for id, c := range m {
			if id == "" {
				t.Fatal("a node without an ID was kept")
			}
			_, _ = ParseCertificates(c)
		}
	})
}
