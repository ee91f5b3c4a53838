// SPDX-License-Identifier: MIT
// net/child: a helper process spoken to over one stream socket.
//
// spawn_child() starts `path` with one end of a fresh socketpair as its
// stdin and stdout (its stderr is ours, so what it says lands in our log)
// and hands back the other end as a Connection (is_unix(), peer "unix")
// together with the Process handle. Close-on-exec everywhere: no other
// descriptor of the daemon (the spool, listeners, upstream sessions) leaks
// into the child.
//
// The owner ends the child by closing the Connection (the helper exits on
// EOF) or with Process::kill(), and closes the Process handle in or after
// its exited callback.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "loop/loop.h"
#include "net/connection.h"

namespace spoolgate::net {

struct Child {
  std::unique_ptr<Connection> conn;
  loop::HandlePtr<loop::Process> process;
};

Result<Child> spawn_child(loop::Loop& loop, const std::string& path, const std::vector<std::string>& args,
                          loop::Process::Exited exited);

}  // namespace spoolgate::net
