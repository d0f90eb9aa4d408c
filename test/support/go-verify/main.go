// go-verify checks the service's Merkle proofs and signed notes with Go's golang.org/x/mod/sumdb packages, an
// implementation independent of the service's own: tlog (RFC 6962 hashing and proofs, which RFC 9162 keeps)
// and note (C2SP signed notes).
//
//	go-verify inclusion    {"leaf": base64, "index": n, "treeSize": n, "proof": [base64], "root": base64}
//	go-verify consistency  {"size1": n, "size2": n, "proof": [base64], "root1": base64, "root2": base64}
//	go-verify note         {"note": text, "verifierKeys": [vkey]}
//
// The request is JSON on stdin. It prints one JSON line: {"ok": true, ...} and exits 0 when the proof or note
// verifies, {"ok": false, "error": ...} and exits 1 when it does not, and exits 2 on a request it cannot read.
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type inclusion struct {
	Leaf     string   `json:"leaf"`
	Index    int64    `json:"index"`
	TreeSize int64    `json:"treeSize"`
	Proof    []string `json:"proof"`
	Root     string   `json:"root"`
}

type consistency struct {
	Size1 int64    `json:"size1"`
	Size2 int64    `json:"size2"`
	Proof []string `json:"proof"`
	Root1 string   `json:"root1"`
	Root2 string   `json:"root2"`
}

type signedNote struct {
	Note         string   `json:"note"`
	VerifierKeys []string `json:"verifierKeys"`
}

func answer(result map[string]any, code int) {
	out, _ := json.Marshal(result)
	fmt.Println(string(out))
	os.Exit(code)
}

func refuse(err error) { answer(map[string]any{"ok": false, "error": err.Error()}, 1) }

func unreadable(err error) {
	fmt.Fprintln(os.Stderr, "go-verify:", err)
	os.Exit(2)
}

func read(request any) {
	decoder := json.NewDecoder(os.Stdin)
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(request); err != nil {
		unreadable(err)
	}
}

func hash(text string) tlog.Hash {
	h, err := tlog.ParseHash(text)
	if err != nil {
		unreadable(fmt.Errorf("%q: %v", text, err))
	}
	return h
}

func hashes(texts []string) []tlog.Hash {
	out := make([]tlog.Hash, len(texts))
	for i, text := range texts {
		out[i] = hash(text)
	}
	return out
}

func main() {
	if len(os.Args) != 2 {
		unreadable(fmt.Errorf("usage: go-verify inclusion|consistency|note < request.json"))
	}
	switch os.Args[1] {
	case "inclusion":
		var r inclusion
		read(&r)
		leaf, err := base64.StdEncoding.DecodeString(r.Leaf)
		if err != nil {
			unreadable(err)
		}
		leafHash := tlog.RecordHash(leaf)
		if err := tlog.CheckRecord(hashes(r.Proof), r.TreeSize, hash(r.Root), r.Index, leafHash); err != nil {
			refuse(err)
		}
		answer(map[string]any{"ok": true, "leafHash": leafHash.String()}, 0)
	case "consistency":
		var r consistency
		read(&r)
		if err := tlog.CheckTree(hashes(r.Proof), r.Size2, hash(r.Root2), r.Size1, hash(r.Root1)); err != nil {
			refuse(err)
		}
		answer(map[string]any{"ok": true}, 0)
	case "note":
		var r signedNote
		read(&r)
		verifiers := make([]note.Verifier, 0, len(r.VerifierKeys))
		for _, vkey := range r.VerifierKeys {
			v, err := note.NewVerifier(vkey)
			if err != nil {
				unreadable(fmt.Errorf("verifier key %q: %v", vkey, err))
			}
			verifiers = append(verifiers, v)
		}
		n, err := note.Open([]byte(r.Note), note.VerifierList(verifiers...))
		if err != nil {
			refuse(err)
		}
		signers := make([]string, 0, len(n.Sigs))
		for _, sig := range n.Sigs {
			signers = append(signers, sig.Name)
		}
		answer(map[string]any{"ok": true, "text": n.Text, "signers": signers}, 0)
	default:
		unreadable(fmt.Errorf("no subcommand %q: inclusion, consistency or note", os.Args[1]))
	}
}
