package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// ProbeResult is the latency distribution one prober run measured. A query
// without an answer within the timeout counts with the timeout as its
// latency, so losses push the percentiles up instead of vanishing.
type ProbeResult struct {
	Sent  int     `json:"sent"`
	Lost  int     `json:"lost"`
	Wrong int     `json:"wrong"` // answers that were not the expected A record
	P50Us float64 `json:"p50_us"`
	P90Us float64 `json:"p90_us"`
	P99Us float64 `json:"p99_us"`
	MaxUs float64 `json:"max_us"`
	// LastWrong describes the last unexpected answer.
	LastWrong string `json:"last_wrong,omitempty"`
}

// Percentile is the nearest-rank percentile p (0 < p <= 100) of sorted
// xs; 0 for none.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// summarizeProbe turns latencies (µs) into a ProbeResult.
func summarizeProbe(lat []float64, sent, lost, wrong int, lastWrong string) ProbeResult {
	slices.Sort(lat)
	r := ProbeResult{Sent: sent, Lost: lost, Wrong: wrong, LastWrong: lastWrong}
	if len(lat) > 0 {
		r.P50Us, r.P90Us, r.P99Us = Percentile(lat, 50), Percentile(lat, 90), Percentile(lat, 99)
		r.MaxUs = lat[len(lat)-1]
	}
	return r
}

// prober sends one A query at a time from a socket in the client
// namespace, at a fixed rate, and times each round trip. It is closed
// loop: a slow answer delays the next query (no coordinated-omission
// correction), which at a moderate rate and sub-millisecond answers does
// not matter.
type prober struct {
	conn    *net.UDPConn
	timeout time.Duration
}

// newProber opens a UDP socket inside ns connected to server:53.
func newProber(ns string, server net.IP) (*prober, error) {
	p := &prober{timeout: time.Second}
	err := inNetns(ns, func() error {
		c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: server, Port: dnsPort})
		if err != nil {
			return fmt.Errorf("prober socket: %w", err)
		}
		p.conn = c
		return nil
	})
	return p, err
}

func (p *prober) Close() error { return p.conn.Close() }

// run queries name (type A) at rate per second until ctx ends or dur
// passes, and checks every answer is NOERROR with exactly the A record
// want.
func (p *prober) run(ctx context.Context, name, want string, rate int, dur time.Duration) (ProbeResult, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	q.RecursionDesired = false
	wire, err := q.Pack()
	if err != nil {
		return ProbeResult{}, err
	}
	buf := make([]byte, 1500)
	lat := make([]float64, 0, int(dur.Seconds()*float64(rate))+16)
	sent, lost, wrong := 0, 0, 0
	lastWrong := ""
	interval := time.Second / time.Duration(rate)
	end := time.Now().Add(dur)
	next := time.Now()
	id := uint16(os.Getpid())
	for time.Now().Before(end) && ctx.Err() == nil {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(interval)
		id++
		wire[0], wire[1] = byte(id>>8), byte(id)
		start := time.Now()
		if _, err := p.conn.Write(wire); err != nil {
			return ProbeResult{}, fmt.Errorf("prober send: %w", err)
		}
		sent++
		got := false
		for !got {
			p.conn.SetReadDeadline(start.Add(p.timeout))
			n, err := p.conn.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				// ICMP port unreachable and the like: count as lost.
				break
			}
			if n < 2 || uint16(buf[0])<<8|uint16(buf[1]) != id {
				continue // a late answer to an earlier, timed-out query
			}
			got = true
			lat = append(lat, float64(time.Since(start).Nanoseconds())/1e3)
			if why := checkAnswer(buf[:n], want); why != "" {
				wrong++
				lastWrong = why
			}
		}
		if !got {
			lost++
			lat = append(lat, float64(p.timeout.Nanoseconds())/1e3)
		}
	}
	return summarizeProbe(lat, sent, lost, wrong, lastWrong), nil
}

// checkAnswer returns "" when msg is a NOERROR answer holding exactly one
// A record with address want, else what is wrong with it.
func checkAnswer(msg []byte, want string) string {
	var m dns.Msg
	if err := m.Unpack(msg); err != nil {
		return "unpack: " + err.Error()
	}
	if m.Rcode != dns.RcodeSuccess {
		return "rcode " + dns.RcodeToString[m.Rcode]
	}
	if len(m.Answer) != 1 {
		return fmt.Sprintf("%d answer records", len(m.Answer))
	}
	a, ok := m.Answer[0].(*dns.A)
	if !ok || a.A.String() != want {
		return "answer " + m.Answer[0].String()
	}
	return ""
}

// checkOnce sends one query and reports whether the expected answer came
// back within a second; used to see who answers before measuring.
func (p *prober) checkOnce(ctx context.Context, name, want string) error {
	r, err := p.run(ctx, name, want, 1000, time.Millisecond)
	if err != nil {
		return err
	}
	switch {
	case r.Sent == 0:
		return errors.New("no query sent")
	case r.Lost > 0:
		return fmt.Errorf("no answer to %s A within %s", name, p.timeout)
	case r.Wrong > 0:
		return fmt.Errorf("%s A: want %s, got %s", name, want, r.LastWrong)
	}
	return nil
}
