package routerns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// helperMain runs when the test binary is started as a helper inside a
// namespace (helperEnv set). Every mode prints one result line on stdout.
//
//	serve [@NAME] ADDR...          TCP servers answering "peer=<source address>"
//	                               (with @NAME: "peer=<source address> at=NAME")
//	dial SRC|- HOST:PORT TIMEOUT   -> "peer=...", "timeout", "refused", "unreachable" or "error: ..."
//	lookup SRC|- SERVER NAME TIMEOUT -> "a=ADDR,..." , "rcode=N", "timeout", "unreachable" or "error: ..."
//	dials SRC|- TIMEOUT HOST:PORT...           dial each at once, one line each, in order
//	lookups SRC|- SERVER TIMEOUT NAME...       lookup each at once, one line each, in order
func helperMain(mode string, args []string) int {
	if code, ok := pairHelper(mode, args); ok {
		return code
	}
	switch {
	case mode == "serve" && len(args) > 0:
		return serveMain(args)
	case mode == "dial" && len(args) == 3:
		return dialMain(args[0], args[1], args[2])
	case mode == "lookup" && len(args) == 4:
		return lookupMain(args[0], args[1], args[2], args[3])
	case mode == "dials" && len(args) > 2:
		return eachMain(args[2:], func(dst string) string { return dialOne(args[0], dst, args[1]) })
	case mode == "lookups" && len(args) > 3:
		return eachMain(args[3:], func(name string) string { return lookupOne(args[0], args[1], name, args[2]) })
	}
	fmt.Fprintf(os.Stderr, "helper: bad call %s %q\n", mode, args)
	return 2
}

func serveMain(addrs []string) int {
	at := ""
	if strings.HasPrefix(addrs[0], "@") {
		at, addrs = " at="+addrs[0][1:], addrs[1:]
	}
	for _, a := range addrs {
		ln, err := net.Listen("tcp4", a)
		if err != nil {
			fmt.Printf("error: %v\n", err)
			return 1
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				fmt.Fprintf(c, "peer=%s%s\n", host, at)
				c.Close()
			}
		}()
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin) // until the test closes stdin
	return 0
}

func dialMain(src, dst, timeout string) int {
	fmt.Println(dialOne(src, dst, timeout))
	return 0
}

// eachMain runs one probe per argument concurrently and prints the results
// in the arguments' order, one line each.
func eachMain(args []string, probe func(string) string) int {
	out := make([]string, len(args))
	var wg sync.WaitGroup
	for i, a := range args {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = probe(a)
		}()
	}
	wg.Wait()
	for _, line := range out {
		fmt.Println(line)
	}
	return 0
}

// dialOne connects from src ("-": any) to dst and says what happened.
func dialOne(src, dst, timeout string) string {
	d, err := time.ParseDuration(timeout)
	if err != nil {
		return fmt.Sprintf("error: %v", err)
	}
	dialer := net.Dialer{Timeout: d}
	if src != "-" {
		dialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := dialer.Dial("tcp4", dst)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.EHOSTUNREACH): // no ARP answer: not on the segment
		return "unreachable"
	case isTimeout(err):
		return "timeout"
	case err != nil:
		return fmt.Sprintf("error: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d))
	line := make([]byte, 64)
	n, err := c.Read(line)
	if err != nil && n == 0 {
		return fmt.Sprintf("error: connected, then %v", err)
	}
	return strings.TrimSpace(string(line[:n]))
}

// lookupMain sends one DNS A query (resent once) and reports the answer.
// It builds the query itself so that nothing (no /etc/hosts, no search
// list) stands between the question and the server.
func lookupMain(src, server, name, timeout string) int {
	fmt.Println(lookupOne(src, server, name, timeout))
	return 0
}

func lookupOne(src, server, name, timeout string) string {
	d, err := time.ParseDuration(timeout)
	if err != nil {
		return fmt.Sprintf("error: %v", err)
	}
	var laddr *net.UDPAddr
	if src != "-" {
		laddr = &net.UDPAddr{IP: net.ParseIP(src)}
	}
	c, err := net.DialUDP("udp4", laddr, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(server), 53)))
	if err != nil {
		return fmt.Sprintf("error: %v", err)
	}
	defer c.Close()
	id := uint16(rand.Uint32())
	query := dnsQuery(id, name)
	deadline := time.Now().Add(d)
	buf := make([]byte, 1500)
	for attempt := 0; attempt < 2; attempt++ {
		c.Write(query)
		c.SetReadDeadline(time.Now().Add(d / 2))
		if time.Now().Add(d / 2).After(deadline) {
			c.SetReadDeadline(deadline)
		}
		n, err := c.Read(buf)
		switch {
		case isTimeout(err):
			continue
		case errors.Is(err, syscall.EHOSTUNREACH): // no ARP answer: not on the segment
			return "unreachable"
		case err != nil:
			return fmt.Sprintf("error: %v", err)
		}
		addrs, rcode, err := parseA(id, buf[:n])
		switch {
		case err != nil:
			return fmt.Sprintf("error: %v", err)
		case rcode != 0:
			return fmt.Sprintf("rcode=%d", rcode)
		}
		return "a=" + strings.Join(addrs, ",")
	}
	return "timeout"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// dnsQuery is a recursive query for the A records of name.
func dnsQuery(id uint16, name string) []byte {
	b := []byte{byte(id >> 8), byte(id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		b = append(b, byte(len(label)))
		b = append(b, label...)
	}
	return append(b, 0, 0, 1, 0, 1) // root, type A, class IN
}

// parseA returns the A records in the answer section of a response.
func parseA(id uint16, msg []byte) (addrs []string, rcode int, err error) {
	short := errors.New("short DNS response")
	if len(msg) < 12 || binary.BigEndian.Uint16(msg) != id || msg[2]&0x80 == 0 {
		return nil, 0, errors.New("not a response to the query")
	}
	rcode = int(msg[3] & 0x0f)
	questions, answers := int(binary.BigEndian.Uint16(msg[4:])), int(binary.BigEndian.Uint16(msg[6:]))
	off := 12
	skipName := func() error {
		for off < len(msg) {
			switch l := int(msg[off]); {
			case l == 0:
				off++
				return nil
			case l&0xc0 == 0xc0: // compression pointer ends the name
				off += 2
				return nil
			default:
				off += 1 + l
			}
		}
		return short
	}
	for i := 0; i < questions; i++ {
		if err := skipName(); err != nil {
			return nil, rcode, err
		}
		off += 4
	}
	for i := 0; i < answers; i++ {
		if err := skipName(); err != nil {
			return nil, rcode, err
		}
		if off+10 > len(msg) {
			return nil, rcode, short
		}
		typ, length := binary.BigEndian.Uint16(msg[off:]), int(binary.BigEndian.Uint16(msg[off+8:]))
		off += 10
		if off+length > len(msg) {
			return nil, rcode, short
		}
		if typ == 1 && length == 4 {
			addrs = append(addrs, netip.AddrFrom4([4]byte(msg[off:off+4])).String())
		}
		off += length
	}
	return addrs, rcode, nil
}
