module github.com/seed-ff72c416/bigqueue/forward

go 1.26.0

require (
	github.com/seed-ff72c416/bigqueue v0.1.0
	github.com/stretchr/testify v1.12.1
)

require (
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
