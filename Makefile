# The front door: `make test` is what CI runs.
GO ?= go
MODULES := . ./cmd/bigqueue ./benchmarks ./forward ./release
FUZZTIME ?= 30s
GOLANGCI_LINT_VERSION := v2.15.0

# The version the next release is tagged with: the library as vX.Y.Z, the
# tool as cmd/bigqueue/vX.Y.Z and the forwarder as forward/vX.Y.Z, which require the
# library at the same version.
RELEASE_VERSION := v0.1.0

.PHONY: test vet tidy tidy-check release-check bench sidebyside compare lint fuzz

## test: format and vet checks (also for macOS and arm64), tidy modules, every module's
##       tests with -race, then the release check. The fuzz targets' seed
##       corpora run as part of the library's tests.
test: vet tidy-check
	cd benchmarks && $(GO) test -race -count=1 -timeout 10m ./...
	cd cmd/bigqueue && $(GO) test -race -count=1 -timeout 10m ./...
	cd forward && $(GO) test -race -count=1 -timeout 10m ./...
	$(GO) test -race -count=1 -timeout 20m .
	$(MAKE) release-check

## tidy: tidy every module on its own; the tool and the benchmarks require
##       the library at RELEASE_VERSION with the checksum of the working tree.
##       Run it after changing the library or any go.mod.
tidy:
	release/check.sh tidy $(RELEASE_VERSION)

## tidy-check: fail unless every module is tidy on its own (GOWORK=off go mod
##             tidy -diff), with no replace directive.
tidy-check:
	release/check.sh tidy-check $(RELEASE_VERSION)

## release-check: pack the library and the tool as the module proxy serves
##                them, then from an empty module outside the repository
##                go get the library and run a program, go install the tool
##                and run it.
release-check:
	release/check.sh install $(RELEASE_VERSION)

vet:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && echo "vet $$m" && $(GO) vet ./... && GOOS=darwin $(GO) vet ./... && GOARCH=arm64 $(GO) vet ./...) || exit 1; done

## bench: the library's benchmarks (the reference's names, plus parallel,
##        batch, flush and restart cases). BENCH selects, COUNT repeats.
BENCH ?= .
COUNT ?= 1
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count=$(COUNT) -timeout 120m .

## sidebyside: the reference's benchmarks on the reference and on this
##             project, interleaved, compared by benchstat (COUNT, BENCH, BENCHTIME).
sidebyside:
	cd benchmarks/sidebyside && ./run.sh

## compare: this project against the reference and its peers, one table.
compare:
	cd benchmarks && $(GO) run ./cmd/compare

## lint: golangci-lint over every module (installed on first use).
lint:
	@command -v golangci-lint >/dev/null || $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	@for m in $(MODULES); do (cd $$m && echo "lint $$m" && golangci-lint run ./...) || exit 1; done

## fuzz: each fuzz target for FUZZTIME.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzReadRecord$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzOpenDamaged$$' -fuzztime $(FUZZTIME) .
