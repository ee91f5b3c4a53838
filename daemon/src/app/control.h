// SPDX-License-Identifier: MIT
// app/control: the control protocol, what `spoolgate queue ...`, `reload`,
// `health` and `sendmail` say to the running daemon over
// <spool>/control.sock (app/request_server.h: one line in, "ok\n..." or
// "error: why\n" out).
//
// Verbs: health [live], active, status [json], oauth-status [json] (read only, not
// logged); oauth-reload [KEY] (a new sign-in is in the store), reload, flush,
// retry ID, delete ID, inject ID (a message `spoolgate sendmail` committed
// to the spool itself: scheduled once, counted once), show ID. Every verb
// that names a message takes a queue id and nothing else (no "../", no
// path; show checks its own). Every request but health and active is
// logged as event=control.
#pragma once

#include <string>

#include "app/request_server.h"

namespace spoolgate::app {

class Daemon;

void serve_control(Daemon& d, const std::string& request, const RequestServer::Respond& respond);

}  // namespace spoolgate::app
