module github.com/seed-ff72c416/bigqueue/benchmarks

// go 1.26.0: what golang.org/x/sys v0.50.0, a dependency of the library, requires.
go 1.26.0

require (
	github.com/beeker1121/goque v2.1.0+incompatible
	github.com/grandecola/bigqueue v0.6.0
	github.com/joncrlsn/dque v0.0.0-20211108142734-c2ef48c5192a
	github.com/nsqio/go-diskqueue v1.1.0
	github.com/seed-ff72c416/bigqueue v0.1.0
	github.com/tidwall/wal v1.2.1
)

require (
	github.com/gofrs/flock v0.7.1 // indirect
	github.com/golang/snappy v0.0.0-20180518054509-2e65f85255db // indirect
	github.com/grandecola/mmap v0.7.0 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/syndtr/goleveldb v1.0.0 // indirect
	github.com/tidwall/gjson v1.10.2 // indirect
	github.com/tidwall/match v1.1.1 // indirect
	github.com/tidwall/pretty v1.2.0 // indirect
	github.com/tidwall/tinylru v1.1.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
