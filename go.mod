module github.com/seed-ff72c416/bigqueue

// go 1.26.0: what golang.org/x/sys v0.50.0 requires.
go 1.26.0

require (
	github.com/stretchr/testify v1.12.1
	golang.org/x/sys v0.50.0
)

// testify's, for tests only: tidy lists it, the library never imports it.
require go.yaml.in/yaml/v3 v3.0.5 // indirect
