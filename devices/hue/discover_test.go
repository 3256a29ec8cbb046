package hue

import (
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// fakeResponder answers _hue._tcp PTR queries the way a bridge does (RFC 6762/6763): a PTR to
// its instance in the answer section, SRV, TXT (bridgeid, modelid) and A in the additional
// section, sent by unicast to the querier's port.
func fakeResponder(t *testing.T, instance, host string, ip [4]byte, port uint16, bridgeID string) (addr string, queries chan dnsmessage.Question) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	queries = make(chan dnsmessage.Question, 8)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			if _, err := p.Start(buf[:n]); err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			queries <- q
			if q.Type != dnsmessage.TypePTR || q.Name.String() != "_hue._tcp.local." {
				continue
			}
			resp, err := bridgeAnswer(instance, host, ip, port, bridgeID)
			if err != nil {
				t.Errorf("build answer: %v", err)
				return
			}
			// Also some unrelated chatter, which must be ignored.
			_, _ = pc.WriteTo([]byte{1, 2, 3}, from)
			_, _ = pc.WriteTo(resp, from)
		}
	}()
	return pc.LocalAddr().String(), queries
}

func bridgeAnswer(instance, host string, ip [4]byte, port uint16, bridgeID string) ([]byte, error) {
	svc := dnsmessage.MustNewName("_hue._tcp.local.")
	inst := dnsmessage.MustNewName(instance + "._hue._tcp.local.")
	target := dnsmessage.MustNewName(host)
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{Response: true, Authoritative: true})
	b.EnableCompression()
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	hdr := func(n dnsmessage.Name) dnsmessage.ResourceHeader {
		return dnsmessage.ResourceHeader{Name: n, Class: dnsmessage.ClassINET, TTL: 120}
	}
	if err := b.PTRResource(hdr(svc), dnsmessage.PTRResource{PTR: inst}); err != nil {
		return nil, err
	}
	if err := b.StartAdditionals(); err != nil {
		return nil, err
	}
	if err := b.SRVResource(hdr(inst), dnsmessage.SRVResource{Target: target, Port: port}); err != nil {
		return nil, err
	}
	if err := b.TXTResource(hdr(inst), dnsmessage.TXTResource{TXT: []string{"bridgeid=" + bridgeID, "modelid=BSB002"}}); err != nil {
		return nil, err
	}
	if err := b.AResource(hdr(target), dnsmessage.AResource{A: ip}); err != nil {
		return nil, err
	}
	return b.Finish()
}

func TestDiscoverFindsBridge(t *testing.T) {
	addr, queries := fakeResponder(t, "Hue Bridge - 1A2B3C", "ecb5fa1a2b3c.local.", [4]byte{192, 168, 1, 20}, 443, "ECB5FAFFFE1A2B3C")
	d := Discoverer{Group: addr, Wait: 300 * time.Millisecond}
	got, err := d.Discover(context.Background())
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	want := Bridge{ID: "ecb5fafffe1a2b3c", Name: "Hue Bridge - 1A2B3C", Address: "192.168.1.20:443"}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("Discover = %+v, want [%+v]", got, want)
	}
	q := <-queries
	if q.Type != dnsmessage.TypePTR || q.Name.String() != "_hue._tcp.local." {
		t.Errorf("query = %v", q)
	}
}

func TestDiscoverNothing(t *testing.T) {
	// A silent peer: the result is empty, not an error, once the wait is over.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	start := time.Now()
	got, err := Discoverer{Group: pc.LocalAddr().String(), Wait: 100 * time.Millisecond}.Discover(context.Background())
	if err != nil || len(got) != 0 {
		t.Fatalf("Discover = %v, %v; want nothing", got, err)
	}
	if time.Since(start) > 2*time.Second {
		t.Error("Discover overran its wait")
	}
}
