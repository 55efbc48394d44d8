package clicmd

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/leakline/leakline/pkg/backtest"
	"github.com/leakline/leakline/pkg/chstore"
	"github.com/leakline/leakline/pkg/config"
	"github.com/leakline/leakline/pkg/detect"
	"github.com/leakline/leakline/pkg/edm"
	"github.com/leakline/leakline/pkg/inspect"
	"github.com/leakline/leakline/pkg/kafkaio"
	"github.com/leakline/leakline/pkg/pipeline"
	"github.com/leakline/leakline/pkg/privacy"
	"github.com/leakline/leakline/pkg/ruledeploy"
	"github.com/leakline/leakline/pkg/rules"
)

// Rules implements `leakline rules …`.
//
//	validate DIR               compile the pack: every error with file:line:col, exit 1
//	test DIR                   validate, then run DIR/tests/*.yaml through the engine
//	deploy DIR -m MSG          validate, test, sign and publish the pack to dlp.rules
//	diff DIR                   rules added, removed, modified against the deployed pack
//	history                    every deployed pack: seq, when, who, why, changes
//	rollback SEQ               republish deploy SEQ's files as a new deploy
//	keygen -o KEY              write an ed25519 key pair (KEY, KEY.pub)
//	status                     which pack each detector instance runs, last rejection
//	backtest DIR --from T      replay recorded events through DIR, compare with production
//
// deploy, diff, history, rollback, keygen and status use pkg/ruledeploy;
// backtest uses pkg/backtest.
func Rules(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, rulesUsage)
		return ExitUsage
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "deploy":
		return rulesDeploy(ctx, args, stdout, stderr)
	case "diff":
		return rulesDiff(ctx, args, stdout, stderr)
	case "history":
		return rulesHistory(ctx, args, stdout, stderr)
	case "rollback":
		return rulesRollback(ctx, args, stdout, stderr)
	case "keygen":
		return rulesKeygen(args, stdout, stderr)
	case "status":
		return rulesStatus(ctx, args, stdout, stderr)
	case "backtest":
		return rulesBacktest(ctx, args, stdout, stderr)
	}
	fs := flag.NewFlagSet("rules "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "test: list every case, not only failures")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 1 {
		return usageError(fs, stderr, "want exactly one pack directory")
	}
	dir := pos[0]
	switch sub {
	case "validate":
		p, ok := loadPack(dir, stderr)
		if !ok {
			return ExitError
		}
		fmt.Fprintf(stdout, "ok: %s: %d rules, pack version %s, checksum %s\n", dir, len(p.Rules), p.Version, p.Checksum[:12])
		return ExitOK
	case "test":
		p, ok := loadPack(dir, stderr)
		if !ok {
			return ExitError
		}
		return testPack(p, dir, *verbose, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "leakline rules: unknown command %q\n\n%s", sub, rulesUsage)
		return ExitUsage
	}
}

const rulesUsage = `usage: leakline rules <command> [flags] [ARG]

commands:
  validate DIR         compile a rule pack; report every error with file:line:col
  test DIR             validate, then run the pack's fixtures (DIR/tests/*.yaml)
  deploy DIR -m MSG    validate, test, sign (--signing-key-file) and publish to dlp.rules
  diff DIR             what deploying DIR would change against the deployed pack
  history              every deployed pack: seq, time, author, message, changes
  rollback SEQ         republish deploy SEQ's files, signed, as a new deploy
  keygen -o KEY        write an ed25519 signing key (KEY) and its public key (KEY.pub)
  status               which pack each detector instance runs now, and what it rejected
  backtest DIR --from T --to T
                       replay recorded events through DIR and compare with production's
                       findings in ClickHouse: per rule new, gone, unchanged, changed

Kafka commands take --brokers (default $LEAKLINE_KAFKA_BROKERS) and --topic
(default dlp.rules); signing commands take --signing-key-file (or --key-file;
default $LEAKLINE_RULES_SIGNING_KEY_FILE).
`

func loadPack(dir string, stderr io.Writer) (*rules.Pack, bool) {
	p, err := rules.LoadDir(dir)
	if err == nil {
		return p, true
	}
	errs := rules.Errors(err)
	if len(errs) == 0 {
		fmt.Fprintf(stderr, "%s: %v\n", dir, err)
		return nil, false
	}
	for _, e := range errs {
		fmt.Fprintln(stderr, e)
	}
	fmt.Fprintf(stderr, "%s: %d error(s); the pack is invalid\n", dir, len(errs))
	return nil, false
}

func testPack(p *rules.Pack, dir string, verbose bool, stdout, stderr io.Writer) int {
	cases, err := rules.LoadTests(filepath.Join(dir))
	if err != nil {
		for _, e := range rules.Errors(err) {
			fmt.Fprintln(stderr, e)
		}
		fmt.Fprintf(stderr, "%s: invalid fixtures: %v\n", dir, err)
		return ExitError
	}
	if len(cases) == 0 {
		fmt.Fprintf(stderr, "%s: no fixtures in %s\n", dir, filepath.Join(dir, rules.TestsDir))
		return ExitError
	}
	key := make([]byte, privacy.MinKeyLen)
	if _, err := rand.Read(key); err != nil {
		fmt.Fprintln(stderr, err)
		return ExitError
	}
	sc, err := inspect.NewWithKey(inspect.Config{}, key)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitError
	}
	cfg := detect.DefaultConfig()
	cfg.Pack = p
	res, err := detect.RunTests(cfg, sc, cases)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitError
	}
	failed := 0
	for _, r := range res {
		if len(r.Diffs) == 0 {
			if verbose {
				fmt.Fprintf(stdout, "PASS  %s  %s\n", r.Case.Pos, r.Case.Name)
			}
			continue
		}
		failed++
		fmt.Fprintf(stdout, "FAIL  %s  %s\n", r.Case.Pos, r.Case.Name)
		for _, d := range r.Diffs {
			fmt.Fprintf(stdout, "      %s\n", strings.ReplaceAll(d, "\n", "\n      "))
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", len(res)-failed, failed)
	if failed > 0 {
		return ExitError
	}
	return ExitOK
}

// rulesKafkaFlags are the flags of the commands that talk to Kafka.
type rulesKafkaFlags struct {
	brokers, topic, clientID *string
	timeout                  *time.Duration
	sec                      *config.KafkaSecurityFlags
}

// rulesCHFlags name the ClickHouse that keeps the deploy history
// (rule_deploys); the user and password come from $LEAKLINE_CLICKHOUSE_USER
// and $LEAKLINE_CLICKHOUSE_PASSWORD (or the file named by
// $LEAKLINE_CLICKHOUSE_PASSWORD_FILE), never from flags.
type rulesCHFlags struct {
	addr, db *string
}

func addCHFlags(fs *flag.FlagSet, what string) rulesCHFlags {
	db := os.Getenv("LEAKLINE_CLICKHOUSE_DATABASE")
	if db == "" {
		db = chstore.DefaultDatabase
	}
	return rulesCHFlags{
		addr: fs.String("clickhouse", os.Getenv("LEAKLINE_CLICKHOUSE_ADDR"), what+" (ClickHouse native `address`, default $LEAKLINE_CLICKHOUSE_ADDR; empty: none)"),
		db:   fs.String("clickhouse-database", db, "ClickHouse `database`"),
	}
}

// open connects to the history store; nil when no address is given.
func (c rulesCHFlags) open(ctx context.Context) (*chstore.Store, error) {
	if *c.addr == "" {
		return nil, nil
	}
	pw := os.Getenv("LEAKLINE_CLICKHOUSE_PASSWORD")
	if f := os.Getenv("LEAKLINE_CLICKHOUSE_PASSWORD_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("ClickHouse password file: %w", err)
		}
		pw = strings.TrimSpace(string(b))
	}
	tlsCfg, err := config.ClickHouseTLSFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	return chstore.Open(ctx, chstore.Config{Addr: *c.addr, Database: *c.db, User: os.Getenv("LEAKLINE_CLICKHOUSE_USER"), Password: pw, TLS: tlsCfg})
}

func addKafkaFlags(fs *flag.FlagSet) rulesKafkaFlags {
	return rulesKafkaFlags{
		brokers:  fs.String("brokers", os.Getenv("LEAKLINE_KAFKA_BROKERS"), "comma-separated bootstrap `brokers` host:port (default $LEAKLINE_KAFKA_BROKERS)"),
		topic:    fs.String("topic", ruledeploy.DefaultTopic, "rules `topic`"),
		clientID: fs.String("client-id", kafkaio.DefaultClientID, "Kafka client `id`"),
		timeout:  fs.Duration("timeout", time.Minute, "give up after this `duration`"),
		sec:      config.RegisterKafkaSecurity(fs, os.Getenv),
	}
}

func (k rulesKafkaFlags) config() (kafkaio.Config, error) {
	cfg := kafkaio.Config{Brokers: brokerList(*k.brokers), ClientID: *k.clientID}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, k.sec.Apply(&cfg)
}

// deployedPack returns the newest deployed message and its compiled pack;
// both nil when nothing was deployed yet. With pub, only messages that
// verify and compile count (the pack detectors with pub run); without, the
// newest message is taken unverified.
func deployedPack(ctx context.Context, cfg kafkaio.Config, topic string, pub ed25519.PublicKey) (*ruledeploy.Message, *rules.Pack, error) {
	latest := ruledeploy.Latest
	if pub != nil {
		latest = func(ctx context.Context, cfg kafkaio.Config, topic string) (*ruledeploy.Message, error) {
			return ruledeploy.LatestValid(ctx, cfg, topic, pub)
		}
	}
	m, err := latest(ctx, cfg, topic)
	if errors.Is(err, ruledeploy.ErrNoPack) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	p, err := m.Pack()
	if err != nil {
		return m, nil, fmt.Errorf("deployed pack seq %d: %w", m.Seq, err)
	}
	return m, p, nil
}

// publicKey loads the public key named by path or
// $LEAKLINE_RULES_PUBLIC_KEY_FILE; nil without either.
func publicKey(path string) (ed25519.PublicKey, error) {
	if path == "" {
		path = os.Getenv(ruledeploy.EnvPublicKeyFile)
	}
	if path == "" {
		return nil, nil
	}
	return ruledeploy.LoadPublicKey(path)
}

// addSigningKeyFlags adds --signing-key-file and its older name
// --key-file, both naming the same value: the file of the ed25519 signing
// key (never the key itself, which would show in ps and shell history).
func addSigningKeyFlags(fs *flag.FlagSet) *string {
	path := fs.String("signing-key-file", "", "ed25519 signing key `file` (default $"+ruledeploy.EnvSigningKeyFile+")")
	fs.StringVar(path, "key-file", "", "same as --signing-key-file")
	return path
}

// signingKey loads the private key named by --signing-key-file or
// $LEAKLINE_RULES_SIGNING_KEY_FILE. The key is never printed.
func signingKey(path string) (ed25519.PrivateKey, error) {
	if path == "" {
		path = os.Getenv(ruledeploy.EnvSigningKeyFile)
	}
	if path == "" {
		return nil, fmt.Errorf("no signing key: give --signing-key-file or set %s", ruledeploy.EnvSigningKeyFile)
	}
	return ruledeploy.LoadPrivateKey(path)
}

func defaultAuthor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

// publishFiles signs and publishes files as deploy latest+1 and prints
// what it did.
func publishFiles(ctx context.Context, cfg kafkaio.Config, topic string, files map[string][]byte, priv ed25519.PrivateKey,
	author, msg string, force bool, ch rulesCHFlags, stdout, stderr io.Writer, cmd string) int {
	// The new seq is above every message on the topic (valid or not); the
	// diff is against the newest valid one (signed by this key).
	var seq uint64 = 1
	switch newest, err := ruledeploy.Latest(ctx, cfg, topic); {
	case err == nil:
		seq = newest.Seq + 1
	case !errors.Is(err, ruledeploy.ErrNoPack):
		fmt.Fprintf(stderr, "leakline rules %s: %v\n", cmd, err)
		return ExitError
	}
	cur, curPack, err := deployedPack(ctx, cfg, topic, priv.Public().(ed25519.PublicKey))
	if err != nil && cur == nil {
		fmt.Fprintf(stderr, "leakline rules %s: %v\n", cmd, err)
		return ExitError
	}
	m, p, err := ruledeploy.NewMessage(files, seq, author, msg, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "leakline rules %s: %v\n", cmd, err)
		return ExitError
	}
	if cur != nil && cur.Checksum == p.Checksum && !force {
		fmt.Fprintf(stdout, "unchanged: the deployed pack (seq %d, version %s) has the same checksum; nothing published (--force to publish anyway)\n", cur.Seq, cur.Version)
		return ExitOK
	}
	if err := ruledeploy.Sign(m, priv); err != nil {
		fmt.Fprintf(stderr, "leakline rules %s: %v\n", cmd, err)
		return ExitError
	}
	if err := ruledeploy.Publish(ctx, cfg, topic, m); err != nil {
		fmt.Fprintf(stderr, "leakline rules %s: %v\n", cmd, err)
		return ExitError
	}
	d := ruledeploy.Diff(curPack, p)
	fmt.Fprintf(stdout, "deployed seq %d: pack %s, %d rules, checksum %s, key %s, changes %s\n",
		m.Seq, m.Version, len(p.Rules), m.Checksum[:12], m.KeyID, d.Summary())
	// The deploy is done; the ClickHouse record is its history, so a
	// failure there is a warning, not a failed deploy.
	st, err := ch.open(ctx)
	if err == nil && st != nil {
		err = ruledeploy.Record(ctx, st, m)
		st.Close()
	}
	if err != nil {
		fmt.Fprintf(stderr, "warning: deployed, but not recorded in ClickHouse: %v\n", err)
	}
	return ExitOK
}

func rulesDeploy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("rules deploy", "usage: leakline rules deploy DIR -m MESSAGE [--signing-key-file KEY] --brokers HOST:PORT[,…]\n\n"+
		"Validates DIR, runs its fixtures, then signs the pack and publishes it to the rules\n"+
		"topic as deploy number (latest + 1). Detectors with the public key swap it in.\n\nflags:\n", stderr)
	kf := addKafkaFlags(fs)
	msg := fs.String("m", "", "deploy `message`: why (required)")
	keyFile := addSigningKeyFlags(fs)
	author := fs.String("author", defaultAuthor(), "`who` deploys")
	force := fs.Bool("force", false, "publish even if the deployed pack has the same checksum")
	ch := addCHFlags(fs, "record the deploy in rule_deploys there")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 1 {
		return usageError(fs, stderr, "want exactly one pack directory")
	}
	if strings.TrimSpace(*msg) == "" {
		return usageError(fs, stderr, "-m MESSAGE is required")
	}
	cfg, err := kf.config()
	if err != nil {
		return usageError(fs, stderr, "--brokers: %v", err)
	}
	priv, err := signingKey(*keyFile)
	if err != nil {
		fmt.Fprintln(stderr, "leakline rules deploy:", err)
		return ExitError
	}
	dir := pos[0]
	p, ok := loadPack(dir, stderr)
	if !ok {
		fmt.Fprintln(stderr, "leakline rules deploy: refused: the pack does not validate")
		return ExitError
	}
	if code := testPack(p, dir, false, stdout, stderr); code != ExitOK {
		fmt.Fprintln(stderr, "leakline rules deploy: refused: the pack's fixtures fail")
		return ExitError
	}
	files, err := ruledeploy.ReadPackFiles(dir)
	if err != nil {
		fmt.Fprintln(stderr, "leakline rules deploy:", err)
		return ExitError
	}
	ctx, cancel := context.WithTimeout(ctx, *kf.timeout)
	defer cancel()
	return publishFiles(ctx, cfg, *kf.topic, files, priv, *author, *msg, *force, ch, stdout, stderr, "deploy")
}

func rulesDiff(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("rules diff", "usage: leakline rules diff DIR --brokers HOST:PORT[,…]\n\n"+
		"Compares DIR with the deployed pack: rules added, removed and modified, field by\n"+
		"field. A modified rule marked (restart) changes version: its windows start afresh.\n\nflags:\n", stderr)
	kf := addKafkaFlags(fs)
	asJSON := fs.Bool("json", false, "print the diff as JSON")
	pubFile := fs.String("public-key", "", "compare with the newest pack that verifies with this public key `file` (default $"+ruledeploy.EnvPublicKeyFile+"; none: the newest, unverified)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 1 {
		return usageError(fs, stderr, "want exactly one pack directory")
	}
	cfg, err := kf.config()
	if err != nil {
		return usageError(fs, stderr, "--brokers: %v", err)
	}
	pub, err := publicKey(*pubFile)
	if err != nil {
		fmt.Fprintln(stderr, "leakline rules diff:", err)
		return ExitError
	}
	p, ok := loadPack(pos[0], stderr)
	if !ok {
		return ExitError
	}
	ctx, cancel := context.WithTimeout(ctx, *kf.timeout)
	defer cancel()
	cur, curPack, err := deployedPack(ctx, cfg, *kf.topic, pub)
	if err != nil {
		fmt.Fprintln(stderr, "leakline rules diff:", err)
		return ExitError
	}
	d := ruledeploy.Diff(curPack, p)
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(d); err != nil {
			fmt.Fprintln(stderr, "leakline rules diff:", err)
			return ExitError
		}
		return ExitOK
	}
	if cur == nil {
		fmt.Fprintln(stdout, "deployed: nothing")
	} else {
		fmt.Fprintf(stdout, "deployed: seq %d, pack %s, checksum %s\n", cur.Seq, cur.Version, cur.Checksum[:12])
	}
	fmt.Fprintf(stdout, "candidate: %s, pack %s, checksum %s\n", pos[0], p.Version, p.Checksum[:12])
	if d.Empty() {
		fmt.Fprintln(stdout, "no changes")
		return ExitOK
	}
	for _, c := range d.Pack {
		fmt.Fprintf(stdout, "pack %s: %q -> %q\n", c.Field, c.Old, c.New)
	}
	for _, id := range d.Added {
		fmt.Fprintf(stdout, "+ %s\n", id)
	}
	for _, id := range d.Removed {
		fmt.Fprintf(stdout, "- %s\n", id)
	}
	for _, r := range d.Modified {
		restart := ""
		if r.Restart {
			restart = " (restart: new version)"
		}
		fmt.Fprintf(stdout, "~ %s%s\n", r.ID, restart)
		for _, c := range r.Changes {
			fmt.Fprintf(stdout, "    %s: %q -> %q\n", c.Field, c.Old, c.New)
		}
	}
	fmt.Fprintf(stdout, "%s\n", d.Summary())
	return ExitOK
}

// historyRow is one line of `rules history --json`.
type historyRow struct {
	Offset   int64     `json:"offset"`
	Seq      uint64    `json:"seq"`
	Version  string    `json:"version"`
	Time     time.Time `json:"time"`
	Author   string    `json:"author"`
	Message  string    `json:"message"`
	Checksum string    `json:"checksum"`
	KeyID    string    `json:"key_id"`
	Changes  string    `json:"changes"`
	Error    string    `json:"error,omitempty"`
}

func rulesHistory(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("rules history", "usage: leakline rules history --brokers HOST:PORT[,…]\n\n"+
		"Lists the deployed packs, oldest first: seq, time, author, version, checksum,\n"+
		"changes against the previous deploy (+added -removed ~modified), message.\n\nflags:\n", stderr)
	kf := addKafkaFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON lines")
	fromCH := fs.Bool("from-clickhouse", false, "read the history from ClickHouse's rule_deploys (every deployment, rollbacks included) instead of Kafka")
	ch := addCHFlags(fs, "with --from-clickhouse: read rule_deploys there")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 0 {
		return usageError(fs, stderr, "no arguments expected")
	}
	ctx, cancel := context.WithTimeout(ctx, *kf.timeout)
	defer cancel()
	var h []ruledeploy.Entry
	if *fromCH {
		if *ch.addr == "" {
			return usageError(fs, stderr, "--from-clickhouse needs --clickhouse ADDR")
		}
		var st *chstore.Store
		if st, err = ch.open(ctx); err == nil {
			h, err = ruledeploy.Recorded(ctx, st)
			st.Close()
		}
	} else {
		cfg, cerr := kf.config()
		if cerr != nil {
			return usageError(fs, stderr, "--brokers: %v", cerr)
		}
		h, err = ruledeploy.History(ctx, cfg, *kf.topic)
	}
	if err != nil {
		fmt.Fprintln(stderr, "leakline rules history:", err)
		return ExitError
	}
	var prev *rules.Pack
	enc := json.NewEncoder(stdout)
	for _, e := range h {
		row := historyRow{Offset: e.Offset}
		if e.Err != nil {
			row.Error = e.Err.Error()
		} else {
			m := e.Message
			row = historyRow{Offset: e.Offset, Seq: m.Seq, Version: m.Version, Time: m.Time, Author: m.Author,
				Message: m.Message, Checksum: m.Checksum, KeyID: m.KeyID}
			if p, err := m.Pack(); err != nil {
				row.Error = err.Error()
			} else {
				row.Changes = ruledeploy.Diff(prev, p).Summary()
				prev = p
			}
		}
		if *asJSON {
			if err := enc.Encode(row); err != nil {
				fmt.Fprintln(stderr, "leakline rules history:", err)
				return ExitError
			}
			continue
		}
		if row.Error != "" && row.Seq == 0 {
			fmt.Fprintf(stdout, "offset %d: undecodable: %s\n", row.Offset, row.Error)
			continue
		}
		fmt.Fprintf(stdout, "seq %d  %s  %s  pack %s  %.12s  %s  %s", row.Seq, row.Time.Format(time.RFC3339),
			row.Author, row.Version, row.Checksum, row.Changes, row.Message)
		if row.Error != "" {
			fmt.Fprintf(stdout, "  [invalid: %s]", row.Error)
		}
		fmt.Fprintln(stdout)
	}
	if len(h) == 0 && !*asJSON {
		fmt.Fprintln(stdout, "no pack deployed")
	}
	return ExitOK
}

func rulesRollback(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("rules rollback", "usage: leakline rules rollback SEQ [-m MESSAGE] [--signing-key-file KEY] --brokers HOST:PORT[,…]\n\n"+
		"Republishes the files of deploy SEQ (see history), signed, as a new deploy\n"+
		"(latest + 1): detectors only accept newer deploys, so a rollback moves forward.\n\nflags:\n", stderr)
	kf := addKafkaFlags(fs)
	msg := fs.String("m", "", "deploy `message` (default \"rollback to seq SEQ\")")
	ch := addCHFlags(fs, "record the deploy in rule_deploys there")
	keyFile := addSigningKeyFlags(fs)
	author := fs.String("author", defaultAuthor(), "`who` deploys")
	otherKey := fs.Bool("trust-other-key", false, "re-sign deploy SEQ even if another key signed it (after a key rotation); check its content first")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 1 {
		return usageError(fs, stderr, "want exactly one SEQ")
	}
	seq, err := strconv.ParseUint(pos[0], 10, 64)
	if err != nil || seq == 0 {
		return usageError(fs, stderr, "SEQ %q is not a deploy number", pos[0])
	}
	cfg, err := kf.config()
	if err != nil {
		return usageError(fs, stderr, "--brokers: %v", err)
	}
	priv, err := signingKey(*keyFile)
	if err != nil {
		fmt.Fprintln(stderr, "leakline rules rollback:", err)
		return ExitError
	}
	ctx, cancel := context.WithTimeout(ctx, *kf.timeout)
	defer cancel()
	h, err := ruledeploy.History(ctx, cfg, *kf.topic)
	if err != nil {
		fmt.Fprintln(stderr, "leakline rules rollback:", err)
		return ExitError
	}
	var target *ruledeploy.Message
	for _, e := range h {
		if e.Message != nil && e.Message.Seq == seq {
			target = e.Message
		}
	}
	if target == nil {
		fmt.Fprintf(stderr, "leakline rules rollback: no deploy with seq %d on %s (compacted away, or never deployed)\n", seq, *kf.topic)
		return ExitError
	}
	// The old deploy must be authentic: signed by this key, or — after a
	// key rotation, and only with --trust-other-key — by another key.
	// Anyone who can write to the topic can sign with a key of their own.
	switch err := ruledeploy.Verify(target, priv.Public().(ed25519.PublicKey)); {
	case err == nil:
	case errors.Is(err, ruledeploy.ErrWrongKey) && *otherKey:
		fmt.Fprintf(stderr, "note: seq %d was signed by key %s; re-signing with key %s\n", seq, target.KeyID,
			ruledeploy.KeyID(priv.Public().(ed25519.PublicKey)))
	default:
		fmt.Fprintf(stderr, "leakline rules rollback: refused: seq %d: %v\n", seq, err)
		return ExitError
	}
	if _, err := target.Pack(); err != nil {
		fmt.Fprintf(stderr, "leakline rules rollback: refused: seq %d: %v\n", seq, err)
		return ExitError
	}
	if *msg == "" {
		*msg = fmt.Sprintf("rollback to seq %d", seq)
	}
	return publishFiles(ctx, cfg, *kf.topic, target.FileBytes(), priv, *author, *msg, false, ch, stdout, stderr, "rollback")
}

func rulesKeygen(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("rules keygen", "usage: leakline rules keygen -o KEY\n\n"+
		"Writes a new ed25519 signing key to KEY (PEM PKCS #8, mode 0600) and its public\n"+
		"key to KEY.pub (PEM PKIX). Deployers sign with KEY; detectors verify with\n"+
		"KEY.pub ($"+ruledeploy.EnvPublicKeyFile+"). Existing files are never overwritten.\n\nflags:\n", stderr)
	out := fs.String("o", "", "output `file` for the private key (required)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 0 || *out == "" {
		return usageError(fs, stderr, "want -o KEY and no arguments")
	}
	pub, priv, err := ruledeploy.GenerateKey()
	if err != nil {
		fmt.Fprintln(stderr, "leakline rules keygen:", err)
		return ExitError
	}
	if err := ruledeploy.WriteKeyPair(*out, priv); err != nil {
		fmt.Fprintln(stderr, "leakline rules keygen:", err)
		return ExitError
	}
	fmt.Fprintf(stdout, "wrote %s and %s.pub (key id %s)\n", *out, *out, ruledeploy.KeyID(pub))
	return ExitOK
}

// brokerList splits a comma-separated broker list, dropping empty items.
func brokerList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func rulesStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("rules status", "usage: leakline rules status --brokers HOST:PORT[,…]\n\n"+
		"Shows the rule pack each detector instance runs (from their heartbeats on\n"+
		"dlp.status), against the deployed pack, and the last pack each rejected.\n\nflags:\n", stderr)
	kf := addKafkaFlags(fs)
	statusTopic := fs.String("status-topic", ruledeploy.DefaultStatusTopic, "heartbeat `topic`")
	within := fs.Duration("within", ruledeploy.DefaultStatusWindow, "show instances heard from within this `duration`")
	asJSON := fs.Bool("json", false, "print JSON lines")
	pubFile := fs.String("public-key", "", "the deployed pack is the newest that verifies with this public key `file` (default $"+ruledeploy.EnvPublicKeyFile+"; none: the newest, unverified)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 0 {
		return usageError(fs, stderr, "no arguments expected")
	}
	cfg, err := kf.config()
	if err != nil {
		return usageError(fs, stderr, "--brokers: %v", err)
	}
	pub, err := publicKey(*pubFile)
	if err != nil {
		fmt.Fprintln(stderr, "leakline rules status:", err)
		return ExitError
	}
	ctx, cancel := context.WithTimeout(ctx, *kf.timeout)
	defer cancel()
	st, err := ruledeploy.ReadStatus(ctx, cfg, *statusTopic, time.Now().Add(-*within))
	if err != nil {
		fmt.Fprintln(stderr, "leakline rules status:", err)
		return ExitError
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, s := range st {
			if err := enc.Encode(s); err != nil {
				fmt.Fprintln(stderr, "leakline rules status:", err)
				return ExitError
			}
		}
		return ExitOK
	}
	latest, _, err := deployedPack(ctx, cfg, *kf.topic, pub)
	unverified := ""
	if pub == nil {
		unverified = " (newest message, unverified: give --public-key)"
	}
	switch {
	case latest == nil && err == nil:
		fmt.Fprintln(stdout, "deployed: nothing")
	case latest == nil:
		fmt.Fprintln(stderr, "leakline rules status:", err)
		return ExitError
	default:
		fmt.Fprintf(stdout, "deployed: seq %d, pack %s, checksum %.12s%s\n", latest.Seq, latest.Version, latest.Checksum, unverified)
	}
	if len(st) == 0 {
		fmt.Fprintf(stdout, "no detector heard from within %v\n", *within)
		return ExitOK
	}
	for _, s := range st {
		mark := ""
		if latest != nil && s.PackSeq != latest.Seq {
			mark = "  [not the deployed seq]"
		}
		if !s.HotReload {
			mark += "  [hot reload off]"
		}
		fmt.Fprintf(stdout, "%s  group %s  seq %d  pack %s  %.12s  partitions %v  seen %s%s\n", s.Instance, s.Group, s.PackSeq,
			s.PackVersion, s.Checksum, s.Partitions, s.Time.Format(time.RFC3339), mark)
		if r := s.LastRejection; r != nil {
			fmt.Fprintf(stdout, "    last rejected: seq %d at offset %d, %s: %s (%s)\n", r.Seq, r.Offset, r.Reason, r.Error, r.Time.Format(time.RFC3339))
		}
	}
	return ExitOK
}

// rulesBacktest implements `leakline rules backtest DIR --from T --to T`:
// DIR's pack over the recorded events of dlp.events, compared with the
// production findings in ClickHouse (pkg/backtest). It reads only.
func rulesBacktest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("rules backtest", "usage: leakline rules backtest DIR --from TIME [--to TIME] [--brokers HOST:PORT[,…]] [--clickhouse HOST:PORT] [--json]\n\n"+
		"Replays the recorded normalized events of [--from, --to) through the candidate pack\n"+
		"in DIR — one engine per partition, in event time, warmed up over the pack's horizon\n"+
		"before --from — and compares its findings with the production findings in ClickHouse\n"+
		"(findings FINAL) over the same span: per rule new, gone, unchanged and changed.\n"+
		"Nothing is deployed, committed or written. TIME is RFC 3339 (2026-11-02T09:00:00Z)\n"+
		"or a date (2026-11-02, midnight UTC). The detector's flags and LEAKLINE_* environment\n"+
		"(HMAC key, inspection, company domains, lateness, EDM, topics) configure the engine\n"+
		"as the detector's. Exit status 0 whatever the differences; 1 on failure.\n\nflags:\n", stderr)
	fromS := fs.String("from", "", "start of the span (`TIME`, required)")
	toS := fs.String("to", "", "end of the span, exclusive (`TIME`, default now)")
	brokers := fs.String("brokers", "", "comma-separated bootstrap `brokers` (overrides -kafka-brokers / $LEAKLINE_KAFKA_BROKERS)")
	chAddr := fs.String("clickhouse", "", "ClickHouse native `address` of the production findings (overrides -clickhouse-addr / $LEAKLINE_CLICKHOUSE_ADDR)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after this `duration`")
	flags := config.Register(fs, os.Getenv)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 1 {
		return usageError(fs, stderr, "want exactly one pack directory")
	}
	from, err := parseTime(*fromS)
	if err != nil || *fromS == "" {
		return usageError(fs, stderr, "--from: want RFC 3339 time or date, got %q", *fromS)
	}
	to := time.Now().UTC()
	if *toS != "" {
		if to, err = parseTime(*toS); err != nil {
			return usageError(fs, stderr, "--to: want RFC 3339 time or date, got %q", *toS)
		}
	}
	if !from.Before(to) {
		return usageError(fs, stderr, "--from %s is not before --to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if *brokers != "" {
		if err := fs.Set("kafka-brokers", *brokers); err != nil {
			return usageError(fs, stderr, "--brokers: %v", err)
		}
	}
	if *chAddr != "" {
		if err := fs.Set("clickhouse-addr", *chAddr); err != nil {
			return usageError(fs, stderr, "--clickhouse: %v", err)
		}
	}
	cfg, err := flags.Resolve(true)
	if err != nil {
		fmt.Fprintln(stderr, "leakline rules backtest:", err)
		return ExitError
	}
	p, ok := loadPack(pos[0], stderr)
	if !ok {
		return ExitError
	}
	cfg.Engine.Pack = p
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rep, err := runBacktest(ctx, cfg, from, to)
	if err != nil {
		fmt.Fprintln(stderr, "leakline rules backtest:", err)
		return ExitError
	}
	if *asJSON {
		err = json.NewEncoder(stdout).Encode(rep)
	} else {
		err = rep.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "leakline rules backtest:", err)
		return ExitError
	}
	return ExitOK
}

// runBacktest builds the detector's scanner (and exact-data-match index)
// from cfg, replays, and compares with the findings in cfg.Store.
func runBacktest(ctx context.Context, cfg pipeline.Config, from, to time.Time) (*backtest.Report, error) {
	sc, err := inspect.NewWithKey(cfg.Inspect, cfg.HMACKey)
	if err != nil {
		return nil, err
	}
	if cfg.EDMTopic != "" && cfg.Engine.EDM == nil {
		if cfg.Engine.EDM, err = edm.LoadFromKafka(ctx, cfg.Kafka, cfg.EDMTopic, cfg.HMACKey); err != nil {
			return nil, fmt.Errorf("edm index from %s: %w", cfg.EDMTopic, err)
		}
	}
	bc := backtest.Config{Kafka: cfg.Kafka, Topic: cfg.Topics.Events, Engine: cfg.Engine, Scanner: sc, From: from, To: to}
	st, err := chstore.Open(ctx, cfg.Store)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	replayed, err := backtest.Replay(ctx, bc)
	if err != nil {
		return nil, err
	}
	prod, err := backtest.Production(ctx, st, from, to, cfg.Engine.Horizon())
	if err != nil {
		return nil, err
	}
	return backtest.NewReport(bc, replayed, prod), nil
}

// parseTime reads an RFC 3339 time or a date (midnight UTC).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	return time.Parse(time.DateOnly, s)
}
