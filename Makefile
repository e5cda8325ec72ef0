# apitap: the Makefile is the contract. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
FUZZTIME ?= 5s
BENCHTIME ?= 1s
DEMO_PCAP ?= testdata/demo.pcap
BENCH_DATA ?= bench-data
BENCH_RUNS ?= 3

# Fuzz targets as package:Target; `make fuzz` runs each for FUZZTIME.
FUZZ_TARGETS := \
	./internal/decode:FuzzVXLAN \
	./internal/decode:FuzzFrame \
	./internal/http1:FuzzConn \
	./internal/apiinventory:FuzzTemplate \
	./internal/record:FuzzEncode

.PHONY: connections preflight status help build build-sniffer-arm64 build-functions demo test deps unit fuzz e2e scenario moto bench bench-data bench-pipeline bench-memory bench-kafka bench-live vet clean invoke sim infra-deps synth policy infra-test

FUNCTIONS := instance-events stack-events reconcile teardown connections preflight status
FN ?= instance-events
EVENT ?= events/ec2-state-running.json
SEED ?= 1
OPS ?= 1000

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

build: ## build the sniffer for this machine into bin/
	$(GO) build -o bin/sniffer ./sniffer

build-sniffer-arm64: ## build the sniffer for EC2 Graviton (linux/arm64) into bin/linux-arm64/
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags='-s -w' -o bin/linux-arm64/sniffer ./sniffer

build-functions: $(addprefix build-,$(FUNCTIONS)) ## build every Lambda function as bin/functions/NAME/bootstrap (provided.al2023, arm64)

build-%: ## build one Lambda function, e.g. make build-reconcile
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -tags lambda.norpc -ldflags='-s -w' -o bin/functions/$*/bootstrap ./functions/$*

invoke: ## run a function locally on a sample event against the simulated account: make invoke FN=reconcile EVENT=events/scheduled-event.json (FN=connections|preflight|status: a command on the sample world)
	@if [[ " connections preflight status " == *" $(FN) "* ]]; then $(GO) run ./tests/invoke -fn $(FN); else $(GO) run ./tests/invoke -fn $(FN) -event $(EVENT); fi

connections: ## every load balancer of the region and what can be mirrored (cdk.json, your AWS credentials; ARGS=-json)
	$(GO) run ./functions/connections $(ARGS)

preflight: ## check the account before the first deploy (cdk.json, your AWS credentials; exit 1 on a fail; ARGS=-json)
	$(GO) run ./functions/preflight $(ARGS)

status: ## a deployed stack: sessions, last reconcile and traffic per selected load balancer (ARGS=-json)
	$(GO) run ./functions/status $(ARGS)

sim: ## one randomized orchestrator scenario: make sim SEED=3 OPS=2000
	$(GO) run ./tests/sim -seed $(SEED) -ops $(OPS)

demo: ## replay the bundled capture into the in-process Kafka broker and print what came out, then the API inventory
	$(GO) run ./sniffer -pcap $(DEMO_PCAP) -kafka embedded -admin-addr '' -health-addr '' -log-level warn -print-inventory

deps: ## install what the tests need (Debian packages, Kafka jars from Maven Central)
	bash scripts/test-deps.sh

vet: ## go vet and gofmt
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

unit: ## unit, table and property tests
	$(GO) test -count=1 ./internal/... ./sniffer/... ./events/... ./functions/... ./tests/bench/ ./tests/h1suite/...
	$(GO) test -count=1 -race ./internal/flow/ ./internal/http1/ ./internal/recorder/ ./internal/kafkasink/ ./internal/apiinventory/ ./internal/vnicount/ ./internal/bufpool/ ./internal/histogram/
	$(GO) test -count=1 -race -run TestRecordBuffersReleasedOnce ./sniffer/

fuzz: ## run every fuzz target for FUZZTIME (default 5s)
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		log=$$(mktemp); \
		if ! $(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg >$$log 2>&1; then \
			cat $$log; \
			if grep -q 'context deadline exceeded' $$log && ! grep -q 'Failing input written' $$log; then \
				echo "fuzz $$name: the engine's own shutdown timed out on a busy machine (no failing input): once more"; \
				$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg; \
			else rm -f $$log; exit 1; fi; \
		else tail -n 2 $$log; fi; \
		rm -f $$log; \
	done

e2e: deps ## end-to-end tests in network namespaces with a real Kafka broker, and the tshark oracle (root)
	$(GO) test -count=1 -timeout 20m -v ./tests/e2e/... ./tests/oracle/... ./tests/kafkatest/... 2>&1 | tee /tmp/apitap-e2e.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go' ; exit $${PIPESTATUS[0]}

scenario: ## orchestrator scenarios and the 10,000-target scale test against the simulated AWS account
	$(GO) test -count=1 -timeout 20m -v ./tests/sim/... ./tests/invoke/... 2>&1 | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go' ; exit $${PIPESTATUS[0]}

moto: infra-deps ## the function binaries against moto's server, an AWS simulator we did not write (tests/moto)
	$(GO) test -count=1 -timeout 10m -v ./tests/moto/... 2>&1 | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go' ; exit $${PIPESTATUS[0]}

infra-deps: ## install the CDK command line (node_modules/) and cfn-lint, checkov and moto's server (~/.cache/apitap/py)
	bash scripts/infra-deps.sh

synth: build-functions build-sniffer-arm64 infra-deps ## synthesize the stack into cdk.out/ (offline, no AWS credentials; configuration in cdk.json "context")
	CDK_DISABLE_CLI_TELEMETRY=true npx --no-install cdk synth --no-notices --quiet

policy: build-functions build-sniffer-arm64 ## print the IAM policy for deploying and destroying the stack; IAM-sized parts go to cdk.out/policy/
	@$(GO) run ./infra/cmd/policy -out cdk.out/policy

infra-test: build-functions build-sniffer-arm64 infra-deps ## CDK assertions, cdk-nag, cfn-lint, checkov, deploy policy and real `cdk synth`
	$(GO) test -count=1 -timeout 15m -v ./infra/... 2>&1 | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go' ; exit $${PIPESTATUS[0]}

test: vet unit fuzz e2e scenario moto infra-test ## every test: what CI runs

bench: ## every figure of README "Performance": stage benchmarks (decode, reassembly, HTTP parsing, record encoding, Kafka) with allocations, then bench-pipeline, bench-kafka, bench-memory and bench-live (root)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count 5 ./internal/...
	@$(MAKE) --no-print-directory bench-pipeline
	@$(MAKE) --no-print-directory bench-kafka
	@$(MAKE) --no-print-directory bench-memory
	@$(MAKE) --no-print-directory bench-live

bench-data: ## generate the pipeline benchmark's VXLAN captures into bench-data/ (git-ignored, ~470 MB, deterministic)
	$(GO) run ./tests/bench -gen -dir $(BENCH_DATA)

bench-pipeline: ## replay bench-data/ through apitap and a net/http baseline in process: packets/s, pairs/s, allocs, CPU, RSS (README "Performance")
	@for f in small gzip mix; do test -f $(BENCH_DATA)/$$f.pcap || { $(MAKE) --no-print-directory bench-data; break; }; done
	$(GO) run ./tests/bench -dir $(BENCH_DATA) -runs $(BENCH_RUNS)

bench-memory: ## the sniffer binary's peak RSS with default limits under hostile captures (partial requests, SYN flood, endless bodies, gzip bomb, GOMEMLIMIT), generated into bench-data/ (README "Performance")
	$(GO) run ./tests/bench -memory -dir $(BENCH_DATA) -runs $(BENCH_RUNS)

bench-kafka: ## the Kafka sink (kafka-go Writer) into the in-process broker: records/s on 1 core and all, allocs/record, publish→ack p50/p99 at half the peak (README "Performance")
	$(GO) run ./tests/bench -kafka -runs $(BENCH_RUNS)

bench-live: ## live intake: the sniffer binary in a network namespace, a sender replaying bench-data/small.pcap at rising rates (root; LIVE_ARGS=-rates 100k,unpaced -runs 3 -cpuprofile /tmp/sniffer.prof)
	@test -f $(BENCH_DATA)/small.pcap || $(MAKE) --no-print-directory bench-data
	$(GO) build -o bin/sniffer ./sniffer
	$(GO) build -o bin/bench ./tests/bench
	bin/bench live -sniffer bin/sniffer -pcap $(BENCH_DATA)/small.pcap $(LIVE_ARGS)

clean: ## remove build output
	rm -rf bin cdk.out
