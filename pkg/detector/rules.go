package detector

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/metrics"
	"github.com/leakline/leakline/pkg/ruledeploy"
	"github.com/leakline/leakline/pkg/rules"
)

// RulesConfig configures the hot reload of deployed rule packs (see
// pkg/ruledeploy and `leakline rules deploy`).
type RulesConfig struct {
	// PublicKey verifies deployed packs. When nil it is read from
	// PublicKeyFile, or else from the file named by
	// $LEAKLINE_RULES_PUBLIC_KEY_FILE; with neither, hot reload is off and
	// Config.Engine.Pack (the built-in or -rules pack) runs for good.
	PublicKey     ed25519.PublicKey
	PublicKeyFile string
	// Topic is the rules topic (default ruledeploy.DefaultTopic).
	Topic string
	// CatchUp bounds how long Run waits at start for the deployed pack
	// before consuming events with the pack it has (default 30 s).
	CatchUp time.Duration
	// StatusTopic receives this instance's heartbeat (ruledeploy.Status:
	// the pack it runs, the last pack it rejected), read by `leakline rules
	// status`. Default ruledeploy.DefaultStatusTopic; "-" turns it off.
	StatusTopic string
	// StatusInterval is the heartbeat period (default 15 s); a swap or a
	// rejection sends one at once.
	StatusInterval time.Duration
	// Instance names this detector in heartbeats (default host-pid).
	Instance string
}

// hotPack is the deployed pack the detector runs; guarded by Detector.mu.
type hotPack struct {
	pack      *rules.Pack // nil: Config.Engine.Pack
	seq       uint64      // 0: no deployed pack yet
	hotReload bool
	rejected  *ruledeploy.Rejection // the last rejection
	nudge     chan struct{}         // asks for a heartbeat now
}

// Rejection reasons (label of leakline_rule_pack_rejected_total).
const (
	rejectUndecodable = "undecodable"
	rejectUnsigned    = "unsigned"
	rejectWrongKey    = "wrong_key"
	rejectTampered    = "tampered"
	rejectInvalid     = "invalid"
	rejectChecksum    = "checksum"
	rejectStale       = "stale"
)

// publicKey resolves the verification key; nil means hot reload is off.
func (c RulesConfig) publicKey() (ed25519.PublicKey, error) {
	if c.PublicKey != nil {
		if len(c.PublicKey) != ed25519.PublicKeySize {
			return nil, errors.New("detector: rules public key is not an ed25519 key")
		}
		return c.PublicKey, nil
	}
	path := c.PublicKeyFile
	if path == "" {
		path = os.Getenv(ruledeploy.EnvPublicKeyFile)
	}
	if path == "" {
		return nil, nil
	}
	return ruledeploy.LoadPublicKey(path)
}

// engineConfig is the engine configuration for a newly assigned partition:
// Config.Engine with the running pack.
func (d *Detector) engineConfig() detect.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	cfg := d.cfg.Engine
	if d.hot.pack != nil {
		cfg.Pack = d.hot.pack
	}
	return cfg
}

// adoptPackLocked brings an engine built before the latest swap (its state
// was rebuilt meanwhile) to the running pack. d.mu must be held.
func (d *Detector) adoptPackLocked(eng *detect.Engine) {
	if d.hot.pack != nil && eng.Pack() != d.hot.pack {
		_ = eng.SwapPack(d.hot.pack) // non-nil pack: cannot fail
	}
}

// RulePack returns the rule pack the detector runs and its deploy number
// (0: Config.Engine.Pack, no deployed pack).
func (d *Detector) RulePack() (*rules.Pack, uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hot.pack == nil {
		return d.cfg.Engine.Pack, 0
	}
	return d.hot.pack, d.hot.seq
}

// startRules starts following the rules topic when a public key is
// configured, and waits (up to RulesConfig.CatchUp) until the packs already
// deployed were read, so the newest valid one runs from the first event.
// stop ends the follower.
func (d *Detector) startRules(ctx context.Context) (stop func(), err error) {
	rc := d.cfg.Rules
	pub, err := rc.publicKey()
	if err != nil {
		return nil, fmt.Errorf("detector: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stop = func() { cancel(); wg.Wait() }
	d.mu.Lock()
	d.hot.hotReload = pub != nil
	d.hot.nudge = make(chan struct{}, 1)
	d.mu.Unlock()
	if rc.StatusTopic != "-" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.heartbeat(ctx)
		}()
	}
	if pub == nil {
		d.log.Info("rule pack hot reload off: no public key", "pack", d.cfg.Engine.Pack.Version)
		return stop, nil
	}
	topic := rc.Topic
	if topic == "" {
		topic = ruledeploy.DefaultTopic
	}
	catchUp := rc.CatchUp
	if catchUp <= 0 {
		catchUp = 30 * time.Second
	}
	caughtUp := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.followRules(ctx, pub, topic, caughtUp)
	}()
	select {
	case <-caughtUp:
	case <-time.After(catchUp):
		d.log.Warn("rule pack hot reload: deployed packs not read in time; starting with the current pack", "topic", topic, "waited", catchUp)
	case <-ctx.Done():
	}
	return stop, nil
}

// followRules reads the rules topic until ctx ends, offering every
// message to offerPack, retrying after failures. It closes caughtUp once
// it has read what was on the topic when it started.
func (d *Detector) followRules(ctx context.Context, pub ed25519.PublicKey, topic string, caughtUp chan struct{}) {
	signalled := false
	done := func() {
		if !signalled {
			signalled = true
			close(caughtUp)
		}
	}
	defer done()
	delay := 500 * time.Millisecond
	for ctx.Err() == nil {
		err := d.followOnce(ctx, pub, topic, done)
		if ctx.Err() != nil {
			return
		}
		d.log.Warn("rule pack hot reload: following the rules topic failed; retrying", "topic", topic, "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

func (d *Detector) followOnce(ctx context.Context, pub ed25519.PublicKey, topic string, caughtUp func()) error {
	if err := ruledeploy.EnsureTopic(ctx, d.cfg.Kafka, topic); err != nil {
		return err
	}
	end, err := ruledeploy.End(ctx, d.cfg.Kafka, topic)
	if err != nil {
		return err
	}
	f, err := ruledeploy.Follow(d.cfg.Kafka, topic)
	if err != nil {
		return err
	}
	defer f.Close()
	if end == 0 {
		caughtUp()
	}
	for {
		e, err := f.Next(ctx)
		if err != nil {
			return err
		}
		d.offerPack(e, pub)
		if e.Offset >= end-1 {
			caughtUp()
		}
	}
}

// offerPack swaps a deployed pack into every engine if it decodes,
// verifies, compiles to its checksum and is newer than the running one;
// otherwise it logs and counts the rejection and the running pack stays.
// The swap holds d.mu, which Handle holds for a whole batch: every event
// is evaluated entirely by the old or entirely by the new pack.
func (d *Detector) offerPack(e ruledeploy.Entry, pub ed25519.PublicKey) {
	reject := func(reason string, err error, attrs ...any) {
		metrics.RulePackRejected.WithLabelValues(reason).Inc()
		rj := &ruledeploy.Rejection{Offset: e.Offset, Reason: reason, Time: time.Now().UTC()}
		if err != nil {
			rj.Error = err.Error()
		}
		if e.Message != nil {
			rj.Seq = e.Message.Seq
		}
		d.mu.Lock()
		d.hot.rejected = rj
		d.nudgeLocked()
		d.mu.Unlock()
		d.log.Warn("rule pack rejected; the running pack stays", append([]any{"reason", reason, "offset", e.Offset, "err", err}, attrs...)...)
	}
	if e.Err != nil || e.Message == nil {
		reject(rejectUndecodable, e.Err)
		return
	}
	m := e.Message
	attrs := []any{"seq", m.Seq, "version", m.Version, "author", m.Author}
	if err := ruledeploy.Verify(m, pub); err != nil {
		reason := rejectTampered
		switch {
		case errors.Is(err, ruledeploy.ErrUnsigned):
			reason = rejectUnsigned
		case errors.Is(err, ruledeploy.ErrWrongKey):
			reason = rejectWrongKey
		}
		reject(reason, err, attrs...)
		return
	}
	if _, seq := d.RulePack(); m.Seq <= seq {
		reject(rejectStale, fmt.Errorf("seq %d is not newer than the running seq %d", m.Seq, seq), attrs...)
		return
	}
	p, err := m.Pack()
	if err != nil {
		reason := rejectInvalid
		if errors.Is(err, ruledeploy.ErrChecksum) {
			reason = rejectChecksum
		}
		reject(reason, err, attrs...)
		return
	}
	d.mu.Lock()
	if m.Seq <= d.hot.seq {
		running := d.hot.seq
		d.mu.Unlock()
		reject(rejectStale, fmt.Errorf("seq %d is not newer than the running seq %d", m.Seq, running), attrs...)
		return
	}
	for _, eng := range d.engines {
		_ = eng.SwapPack(p) // non-nil pack: cannot fail
	}
	d.hot.pack, d.hot.seq = p, m.Seq
	d.nudgeLocked()
	engines := len(d.engines)
	d.mu.Unlock()
	metrics.RulePackSeq.Set(float64(m.Seq))
	d.log.Info("rule pack swapped", append(attrs, "checksum", m.Checksum, "rules", len(p.Rules), "engines", engines, "message", m.Message)...)
}

// nudgeLocked asks the heartbeat for a status now. d.mu must be held.
func (d *Detector) nudgeLocked() {
	select {
	case d.hot.nudge <- struct{}{}:
	default:
	}
}

// Status is this instance's heartbeat as `leakline rules status` shows it.
func (d *Detector) Status() ruledeploy.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.cfg.Engine.Pack
	if d.hot.pack != nil {
		p = d.hot.pack
	}
	s := ruledeploy.Status{Instance: d.instance(), Group: d.cfg.GroupID, Time: time.Now().UTC(), HotReload: d.hot.hotReload,
		PackVersion: p.Version, PackSeq: d.hot.seq, Checksum: p.Checksum, Partitions: []int{}}
	for part := range d.engines {
		s.Partitions = append(s.Partitions, part)
	}
	slices.Sort(s.Partitions)
	if d.hot.rejected != nil {
		rj := *d.hot.rejected
		s.LastRejection = &rj
	}
	return s
}

func (d *Detector) instance() string {
	if d.cfg.Rules.Instance != "" {
		return d.cfg.Rules.Instance
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// heartbeat publishes Status every StatusInterval and when nudged, until
// ctx ends. Failures are logged (at most once a minute) and never stop the
// detector.
func (d *Detector) heartbeat(ctx context.Context) {
	rc := d.cfg.Rules
	topic := rc.StatusTopic
	if topic == "" {
		topic = ruledeploy.DefaultStatusTopic
	}
	every := rc.StatusInterval
	if every <= 0 {
		every = 15 * time.Second
	}
	d.mu.Lock()
	nudge := d.hot.nudge
	d.mu.Unlock()
	w := ruledeploy.NewStatusWriter(d.cfg.Kafka, topic)
	defer w.Close()
	t := time.NewTicker(every)
	defer t.Stop()
	var lastWarn time.Time
	for {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := w.Write(wctx, d.Status())
		cancel()
		if err != nil && ctx.Err() == nil && time.Since(lastWarn) > time.Minute {
			lastWarn = time.Now()
			d.log.Warn("status heartbeat failed", "topic", topic, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-nudge:
		}
	}
}
