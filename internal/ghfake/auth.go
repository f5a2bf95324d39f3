package ghfake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

type authKind int

const (
	authInstallation authKind = iota
	authApp
	authNone // the App manifest conversion: the one-time code is the credential
)

// token is an installation access token the fake issued.
type token struct {
	installationID int64
	expiresAt      time.Time
}

// authenticate checks credentials the way GitHub does before h runs.
func (s *Server) authenticate(kind authKind, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if kind == authNone {
			stateOf(r).bucket = "unauthenticated"
			h(w, r)
			return
		}
		scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if cred == "" {
			writeError(w, http.StatusUnauthorized, "Requires authentication")
			return
		}
		st := stateOf(r)
		if kind == authApp {
			if !strings.EqualFold(scheme, "Bearer") {
				writeError(w, http.StatusUnauthorized, "A JSON web token could not be decoded")
				return
			}
			if err := s.verifyJWT(cred); err != nil {
				writeError(w, http.StatusUnauthorized, err.Error())
				return
			}
			st.bucket = "app"
			h(w, r)
			return
		}

		if !strings.EqualFold(scheme, "token") && !strings.EqualFold(scheme, "Bearer") {
			writeError(w, http.StatusUnauthorized, "Bad credentials")
			return
		}
		s.mu.Lock()
		tok, ok := s.tokens[cred]
		in := s.installations[tok.installationID]
		suspended := in != nil && in.Suspended
		visible := true
		if owner, repo := r.PathValue("owner"), r.PathValue("repo"); ok && in != nil && owner != "" && repo != "" {
			visible = in.repo(owner, repo) != nil
		}
		s.mu.Unlock()
		switch {
		case !ok || in == nil || !s.now().Before(tok.expiresAt):
			writeError(w, http.StatusUnauthorized, "Bad credentials")
			return
		case suspended:
			writeError(w, http.StatusForbidden, "This installation has been suspended")
			return
		}
		// GitHub counts installation requests per installation, not per token.
		st.bucket = "installation:" + strconv.FormatInt(tok.installationID, 10)
		st.installationID = tok.installationID
		if !visible {
			writeError(w, http.StatusNotFound, "Not Found")
			return
		}
		h(w, r)
	}
}

// verifyJWT checks an App JWT as GitHub does: RS256 signed by the App key,
// iss the App ID (string or number), iat not in the future beyond clock
// drift, exp in the future and at most ten minutes after iat.
func (s *Server) verifyJWT(jwt string) error {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return errors.New("A JSON web token could not be decoded")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodeSegment(parts[0], &header); err != nil || header.Alg != "RS256" {
		return errors.New("A JSON web token could not be decoded")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return errors.New("A JSON web token could not be decoded")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(&s.key.PublicKey, crypto.SHA256, sum[:], sig) != nil {
		return errors.New("A JSON web token could not be decoded")
	}
	var claims struct {
		Iss json.RawMessage `json:"iss"`
		Iat *int64          `json:"iat"`
		Exp *int64          `json:"exp"`
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return errors.New("A JSON web token could not be decoded")
	}
	iss := strings.Trim(string(claims.Iss), `"`)
	if iss != strconv.FormatInt(s.appID, 10) {
		return errors.New("Integration not found")
	}
	now := s.now().Unix()
	switch {
	case claims.Iat == nil || *claims.Iat > now+60:
		return errors.New("'Issued at' claim ('iat') must be an Integer representing a time in the past")
	case claims.Exp == nil || *claims.Exp <= now:
		return errors.New("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires")
	case *claims.Exp-*claims.Iat > 600:
		return errors.New("'Expiration time' claim ('exp') is too far in the future")
	}
	return nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// issueToken creates an installation token valid for an hour.
func (s *Server) issueToken(installationID int64) (string, time.Time) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 36)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	tok := "ghs_" + string(b)
	exp := s.now().Add(time.Hour).Truncate(time.Second)
	s.mu.Lock()
	s.tokens[tok] = token{installationID: installationID, expiresAt: exp}
	s.mu.Unlock()
	return tok, exp
}
