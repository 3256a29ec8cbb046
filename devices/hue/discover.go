package hue

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Bridge is a Hue bridge found on the LAN.
type Bridge struct {
	ID      string `json:"id"`      // bridge ID from the TXT record ("bridgeid"), lower case
	Name    string `json:"name"`    // mDNS instance name, e.g. "Hue Bridge - 1A2B3C"
	Address string `json:"address"` // host:port to pair with
}

// hueService is the DNS-SD service type Hue bridges announce.
const hueService = "_hue._tcp.local."

// Discoverer finds bridges with one-shot mDNS queries (RFC 6762 section 5.1): the query is
// sent from an ephemeral port, so responders answer by unicast to that port and no socket on
// the shared port 5353 is needed.
type Discoverer struct {
	// Group is where queries go (default the mDNS group 224.0.0.251:5353).
	Group string
	// Wait is how long answers are collected (default 3s).
	Wait time.Duration
}

// Discover finds bridges with the default Discoverer.
func Discover(ctx context.Context) ([]Bridge, error) { return Discoverer{}.Discover(ctx) }

// Discover asks for _hue._tcp services and returns the bridges that answered within Wait.
func (d Discoverer) Discover(ctx context.Context) ([]Bridge, error) {
	group, wait := d.Group, d.Wait
	if group == "" {
		group = "224.0.0.251:5353"
	}
	if wait <= 0 {
		wait = 3 * time.Second
	}
	dst, err := net.ResolveUDPAddr("udp4", group)
	if err != nil {
		return nil, fmt.Errorf("hue: discovery address %q: %w", group, err)
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		return nil, fmt.Errorf("hue: discovery socket: %w", err)
	}
	defer conn.Close()
	query, err := ptrQuery()
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	if err := conn.SetReadDeadline(deadline); err != nil {
		return nil, fmt.Errorf("hue: discovery socket: %w", err)
	}
	// mDNS runs over UDP without retransmission; a second query a moment later catches a
	// responder that missed the first.
	resend := time.Now().Add(wait / 3)
	if _, err := conn.WriteToUDP(query, dst); err != nil {
		return nil, fmt.Errorf("hue: send discovery query: %w", err)
	}
	found := newAnswers()
	buf := make([]byte, 9000)
	for {
		if !resend.IsZero() && time.Now().After(resend) {
			_, _ = conn.WriteToUDP(query, dst)
			resend = time.Time{}
		}
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			return nil, fmt.Errorf("hue: discovery read: %w", err)
		}
		found.add(buf[:n], from.IP)
	}
	return found.bridges(), nil
}

func ptrQuery() ([]byte, error) {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{})
	if err := b.StartQuestions(); err != nil {
		return nil, fmt.Errorf("hue: build discovery query: %w", err)
	}
	name, err := dnsmessage.NewName(hueService)
	if err != nil {
		return nil, fmt.Errorf("hue: build discovery query: %w", err)
	}
	// The top bit of the class asks for a unicast answer (RFC 6762 section 5.4); responders
	// answer a query from a port other than 5353 by unicast anyway.
	q := dnsmessage.Question{Name: name, Type: dnsmessage.TypePTR, Class: dnsmessage.ClassINET | 0x8000}
	if err := b.Question(q); err != nil {
		return nil, fmt.Errorf("hue: build discovery query: %w", err)
	}
	msg, err := b.Finish()
	if err != nil {
		return nil, fmt.Errorf("hue: build discovery query: %w", err)
	}
	return msg, nil
}

// answers gathers records across packets: the SRV, TXT and A records of one bridge may come
// in separate answers.
type answers struct {
	srv   map[string]dnsmessage.SRVResource // instance -> SRV
	txt   map[string][]string               // instance -> TXT strings
	addr  map[string]net.IP                 // host -> IPv4
	from  map[string]net.IP                 // instance -> sender, when no A record came
	names map[string]string                 // instance -> its name as announced (DNS names compare case-insensitively)
	order []string                          // instances in the order first seen
}

func newAnswers() *answers {
	return &answers{
		srv:   map[string]dnsmessage.SRVResource{},
		txt:   map[string][]string{},
		addr:  map[string]net.IP{},
		from:  map[string]net.IP{},
		names: map[string]string{},
	}
}

// add reads one response; anything malformed or unrelated is ignored.
func (a *answers) add(pkt []byte, sender net.IP) {
	var p dnsmessage.Parser
	h, err := p.Start(pkt)
	if err != nil || !h.Response {
		return
	}
	if err := p.SkipAllQuestions(); err != nil {
		return
	}
	var rrs []dnsmessage.Resource
	if ans, err := p.AllAnswers(); err == nil {
		rrs = append(rrs, ans...)
	}
	if err := p.SkipAllAuthorities(); err == nil {
		if add, err := p.AllAdditionals(); err == nil {
			rrs = append(rrs, add...)
		}
	}
	for _, rr := range rrs {
		orig := rr.Header.Name.String()
		name := strings.ToLower(orig)
		switch body := rr.Body.(type) {
		case *dnsmessage.SRVResource:
			if strings.HasSuffix(name, "."+hueService) {
				if _, seen := a.srv[name]; !seen {
					a.order = append(a.order, name)
				}
				a.srv[name] = *body
				a.names[name] = orig[:len(orig)-len(hueService)-1]
				a.from[name] = sender
			}
		case *dnsmessage.TXTResource:
			a.txt[name] = body.TXT
		case *dnsmessage.AResource:
			a.addr[name] = net.IP(body.A[:])
		}
	}
}

func (a *answers) bridges() []Bridge {
	var out []Bridge
	seen := map[string]bool{}
	for _, inst := range a.order {
		srv := a.srv[inst]
		ip := a.addr[strings.ToLower(srv.Target.String())]
		if ip == nil {
			ip = a.from[inst]
		}
		if ip == nil {
			continue
		}
		b := Bridge{
			Name:    unescapeLabel(a.names[inst]),
			Address: net.JoinHostPort(ip.String(), strconv.Itoa(int(srv.Port))),
		}
		for _, kv := range a.txt[inst] {
			if v, ok := strings.CutPrefix(kv, "bridgeid="); ok {
				b.ID = strings.ToLower(v)
			}
		}
		key := b.ID
		if key == "" {
			key = b.Address
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, b)
	}
	return out
}

// unescapeLabel undoes the \DDD and \X escapes dnsmessage uses when printing a label.
func unescapeLabel(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		if i+3 < len(s) {
			if n, err := strconv.Atoi(s[i+1 : i+4]); err == nil && n < 256 {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i+1])
		i++
	}
	return b.String()
}
