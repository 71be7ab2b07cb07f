// uWebSockets broadcast server for examples/relay/wsbench.sh: uWS's own
// pub/sub.  A client of /ws/TOPIC subscribes to TOPIC; its messages go to
// every subscriber of TOPIC (itself included) by app.publish, as
// writevv-relay --client-publish does, so the same load client drives both.
// Backpressure bound and close on it, like the relay's --max-backlog 4M.
// Built by wsbench.sh from checkouts of uNetworking/uWebSockets and uSockets
// (never committed).  usage: uws_broadcast [HOST] [PORT]
#include "App.h"

#include <cstdio>
#include <cstdlib>
#include <string>

struct Subscriber {
    std::string topic;
};

int main(int argc, char **argv) {
    const char *host = argc > 1 ? argv[1] : "127.0.0.1";
    int port = argc > 2 ? std::atoi(argv[2]) : 0;
    uWS::App app;

    app.ws<Subscriber>("/ws/*", {
        .compression = uWS::DISABLED,
        .maxPayloadLength = 1 << 20,
        .idleTimeout = 0,
        .maxBackpressure = 4 << 20,
        .closeOnBackpressureLimit = true,
        .resetIdleTimeoutOnSend = false,
        .sendPingsAutomatically = false,
        .upgrade = [](auto *res, auto *req, auto *context) {
            std::string topic(req->getUrl().substr(4));
            res->template upgrade<Subscriber>({std::move(topic)},
                req->getHeader("sec-websocket-key"), req->getHeader("sec-websocket-protocol"),
                req->getHeader("sec-websocket-extensions"), context);
        },
        .open = [](auto *ws) { ws->subscribe(ws->getUserData()->topic); },
        .message = [&app](auto *ws, std::string_view message, uWS::OpCode opCode) {
            app.publish(ws->getUserData()->topic, message, opCode);
        },
    }).listen(host, port, [](auto *listen_socket) {
        if (!listen_socket) {
            std::fprintf(stderr, "uws_broadcast: cannot listen\n");
            std::exit(1);
        }
        std::printf("listening on %d\n", us_socket_local_port(0, (struct us_socket_t *) listen_socket));
        std::fflush(stdout);
    });
    app.run();
}
