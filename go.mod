module github.com/seed-ff72c416/bigqueue

go 1.26.0

require golang.org/x/sys v0.50.0 // indirect
