module github.com/seed-ff72c416/bigqueue/cmd/bigqueue

go 1.26.0

require (
	github.com/schollz/progressbar/v3 v3.19.1
	github.com/seed-ff72c416/bigqueue v0.0.0
	github.com/stretchr/testify v1.11.1
)

require (
	github.com/davecgh/go-spew v1.1.1 // indirect
	github.com/mitchellh/colorstring v0.0.0-20190213212951-d06e56a500db // indirect
	github.com/pmezard/go-difflib v1.0.0 // indirect
	github.com/rivo/uniseg v0.4.7 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/term v0.44.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)

replace github.com/seed-ff72c416/bigqueue => ../..
