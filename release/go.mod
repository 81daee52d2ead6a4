module github.com/seed-ff72c416/bigqueue/release

// go 1.26.0: what golang.org/x/mod v0.43.0 requires (and the modules it packs).
go 1.26.0

require golang.org/x/mod v0.43.0
