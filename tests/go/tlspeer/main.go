// tlspeer: a TLS 1.3 peer on Go's crypto/tls (standard library only) for tlsflow's
// interop tests (tests/interop_go.rs). It makes one connection, prints what it
// negotiated, exchanges one line, and exits.
//
//	tlspeer server -cert C -key K           listens on 127.0.0.1:0, prints "LISTEN <port>"
//	tlspeer client -ca CA -addr HOST:PORT   connects with SNI "localhost"
//
// Both then print "CURVE <name>" (tls.ConnectionState.CurveID), "GROUP <hex codepoint>"
// and "EXPORT <hex>" (32 bytes of ExportKeyingMaterial for -label, no context), and
// "LINE <text>" for the line the peer sent. The client writes "ping from go\n"; the server
// answers each line with "pong: " + line. -groups limits the offered/accepted groups
// (comma-separated: X25519MLKEM768, X25519, P256).
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "tlspeer: "+format+"\n", args...)
	os.Exit(1)
}

func groups(list string) []tls.CurveID {
	if list == "" {
		return nil // Go's defaults: X25519MLKEM768 first since Go 1.24
	}
	var out []tls.CurveID
	for _, name := range strings.Split(list, ",") {
		switch name {
		case "X25519MLKEM768":
			out = append(out, tls.X25519MLKEM768)
		case "X25519":
			out = append(out, tls.X25519)
		case "P256":
			out = append(out, tls.CurveP256)
		default:
			fail("unknown group %q", name)
		}
	}
	return out
}

func report(conn *tls.Conn, label string) {
	state := conn.ConnectionState()
	if state.Version != tls.VersionTLS13 {
		fail("negotiated version %x, want TLS 1.3", state.Version)
	}
	fmt.Printf("CURVE %s\n", state.CurveID)
	fmt.Printf("GROUP %04x\n", uint16(state.CurveID))
	ekm, err := state.ExportKeyingMaterial(label, nil, 32)
	if err != nil {
		fail("export: %v", err)
	}
	fmt.Printf("EXPORT %s\n", hex.EncodeToString(ekm))
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: tlspeer server|client [flags]")
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	cert := fs.String("cert", "", "server certificate chain (PEM)")
	key := fs.String("key", "", "server key (PEM)")
	ca := fs.String("ca", "", "CA to trust (PEM)")
	addr := fs.String("addr", "", "server address")
	label := fs.String("label", "EXPORTER-tlsflow-interop", "exporter label")
	groupList := fs.String("groups", "", "key exchange groups")
	fs.Parse(os.Args[2:])
	deadline := time.Now().Add(30 * time.Second)

	switch mode {
	case "server":
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			fail("load key pair: %v", err)
		}
		config := &tls.Config{
			Certificates:     []tls.Certificate{pair},
			MinVersion:       tls.VersionTLS13,
			CurvePreferences: groups(*groupList),
		}
		ln, err := tls.Listen("tcp", "127.0.0.1:0", config)
		if err != nil {
			fail("listen: %v", err)
		}
		fmt.Printf("LISTEN %d\n", ln.Addr().(*net.TCPAddr).Port)
		raw, err := ln.Accept()
		if err != nil {
			fail("accept: %v", err)
		}
		conn := raw.(*tls.Conn)
		conn.SetDeadline(deadline)
		if err := conn.Handshake(); err != nil {
			fail("handshake: %v", err)
		}
		report(conn, *label)
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			fail("read: %v", err)
		}
		fmt.Printf("LINE %s", line)
		if _, err := conn.Write([]byte("pong: " + line)); err != nil {
			fail("write: %v", err)
		}
		if err := conn.Close(); err != nil { // sends close_notify
			fail("close: %v", err)
		}
	case "client":
		pem, err := os.ReadFile(*ca)
		if err != nil {
			fail("read CA: %v", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			fail("no CA certificate in %s", *ca)
		}
		config := &tls.Config{
			RootCAs:          roots,
			ServerName:       "localhost",
			MinVersion:       tls.VersionTLS13,
			CurvePreferences: groups(*groupList),
		}
		dialer := &net.Dialer{Deadline: deadline}
		conn, err := tls.DialWithDialer(dialer, "tcp", *addr, config)
		if err != nil {
			fail("dial: %v", err)
		}
		conn.SetDeadline(deadline)
		report(conn, *label)
		if _, err := conn.Write([]byte("ping from go\n")); err != nil {
			fail("write: %v", err)
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			fail("read: %v", err)
		}
		fmt.Printf("LINE %s", line)
		if err := conn.Close(); err != nil {
			fail("close: %v", err)
		}
	default:
		fail("unknown mode %q", mode)
	}
	fmt.Println("DONE")
}
