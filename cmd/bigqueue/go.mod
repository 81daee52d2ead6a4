module github.com/seed-ff72c416/bigqueue/cmd/bigqueue

go 1.26.0

require (
	github.com/schollz/progressbar/v3 v3.19.1
	github.com/seed-ff72c416/bigqueue v0.1.0
	github.com/stretchr/testify v1.12.1
)

require (
	github.com/mitchellh/colorstring v0.0.0-20190213212951-d06e56a500db // indirect
	github.com/rivo/uniseg v0.4.7 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/term v0.44.0 // indirect
)
