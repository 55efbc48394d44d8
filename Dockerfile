# Multi-stage build of one Leakline service: docker build --build-arg SERVICE=detector .
FROM golang:1.26-bookworm AS build
ARG SERVICE=leakline
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/app ./services/${SERVICE}

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /leakline
USER nonroot:nonroot
ENTRYPOINT ["/leakline"]
