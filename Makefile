# Leakline — the two commands are `make demo` and `make test`.
# Both install what is missing (ClickHouse from Debian's packages, as root).

GO      ?= go
PKGS    ?= ./...
# Go test flags; CI runs the same target with CI=true so missing servers fail.
TESTFLAGS ?= -count=1 -timeout 20m

.PHONY: demo test deps vet fmt-check compose-check frontend-test plugin build bench fuzz

demo: deps
	$(GO) run ./services/leakline demo

test: deps vet fmt-check compose-check frontend-test
	$(GO) test $(TESTFLAGS) $(PKGS)
	./.ci/fuzz-short

# Install the servers the demo and the tests need when they are missing.
deps:
	@./.ci/install-deps

build:
	$(GO) build ./...

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# The production compose file must stay valid (no engine runs here; this only parses it).
compose-check:
	docker-compose -f docker-compose.yml config -q

# The Grafana datasource's frontend: typecheck, unit tests, build into dist/.
frontend-test:
	cd pkg/grafana/plugin && npm ci --no-audit --no-fund --loglevel=error && npm run ci

# The plugin directory Grafana loads: dist/ (frontend + plugin.json) plus the
# backend binary for linux/amd64.
plugin: frontend-test
	cp pkg/grafana/plugin/plugin.json pkg/grafana/plugin/dist/
	CGO_ENABLED=0 $(GO) build -o pkg/grafana/plugin/dist/gpx_leakline_findings_linux_amd64 ./services/grafana-plugin

# A longer fuzz campaign over every target: make fuzz FUZZTIME=10m
fuzz:
	FUZZTIME=$(or $(FUZZTIME),1m) ./.ci/fuzz-short
