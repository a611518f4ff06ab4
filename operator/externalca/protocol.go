package externalca

import (
	"encoding/json"
	"net/http"
)

// SignPath is where swarmkit posts its sign requests: the path of the URL given in the swarm's ExternalCAs.
const SignPath = "/api/v1/cfssl/sign"

// CrossSignProfile is the profile swarmkit names when it asks for a new root to be cross-signed
// (ca.ExternalCrossSignProfile).
const CrossSignProfile = "CA"

// Swarm's node roles as they appear in a node certificate's OU.
const (
	ManagerOU = "swarm-manager"
	WorkerOU  = "swarm-worker"
	// caHost is the extra name swarmkit gives every manager certificate so it can serve as the CA endpoint.
	caHost = "swarm-ca"
)

// SignRequest is CFSSL's sign request (signer.SignRequest) as swarmkit marshals it: hosts, the PEM CSR, the
// subject it wants (CN the node ID, one name with O the swarm ID and OU the role) and the profile (empty, or
// "CA" for a cross-sign). Fields swarmkit sends empty (crl_override, label, extensions) are read and ignored.
type SignRequest struct {
	Hosts       []string          `json:"hosts"`
	Request     string            `json:"certificate_request"`
	Subject     *Subject          `json:"subject,omitempty"`
	Profile     string            `json:"profile"`
	CRLOverride string            `json:"crl_override"`
	Label       string            `json:"label"`
	Extensions  []json.RawMessage `json:"extensions"`
}

// Subject is CFSSL's signer.Subject: its CN has no JSON tag, so the key is "CN".
type Subject struct {
	CN           string `json:"CN"`
	Names        []Name `json:"names"`
	SerialNumber string `json:"SerialNumber,omitempty"`
}

// Name is CFSSL's csr.Name.
type Name struct {
	C            string            `json:"C,omitempty"`
	ST           string            `json:"ST,omitempty"`
	L            string            `json:"L,omitempty"`
	O            string            `json:"O,omitempty"`
	OU           string            `json:"OU,omitempty"`
	SerialNumber string            `json:"SerialNumber,omitempty"`
	OID          map[string]string `json:"OID,omitempty"`
}

// Response is CFSSL's api.Response. swarmkit reads success, result.certificate and errors.
type Response struct {
	Success  bool      `json:"success"`
	Result   any       `json:"result"`
	Errors   []Message `json:"errors"`
	Messages []Message `json:"messages"`
}

// Message is CFSSL's api.ResponseMessage.
type Message struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// CFSSL error codes (cfssl/errors: category*1000 + reason) of the refusals the bridge answers.
const (
	codeAuthFailure   = 7100 // APIClientError, AuthenticationFailure
	codeJSONError     = 7101 // APIClientError, JSONError
	codeServerFailed  = 7104 // APIClientError, ServerRequestFailed
	codeCSRBadRequest = 9003 // CSRError, BadRequest
	codePolicy        = 5100 // PolicyError, InvalidPolicy
)

func successResponse(certPEM string) Response {
	return Response{Success: true, Result: map[string]string{"certificate": certPEM}, Errors: []Message{}, Messages: []Message{}}
}

func errorResponse(code int, msg string) Response {
	return Response{Success: false, Result: nil, Errors: []Message{{Code: code, Message: msg}}, Messages: []Message{}}
}

func writeJSON(w http.ResponseWriter, status int, r Response) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(r)
}
