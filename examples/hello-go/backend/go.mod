module example.com/powerx/hello-go

go 1.19
