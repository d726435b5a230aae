"""Builds and installs QuickFIX 1.16.0 from PyPI's source with the venue's fix, once.

    python fix_config/build_quickfix.py        (the Makefile runs it before `pip install`)

The fix. In QuickFIX 1.16.0's ThreadedSocketConnection, a disconnect closes the socket,
but the connection's thread goes round its loop once more and polls and reads the closed
descriptor number; if the number was reused meanwhile (any socket or file the process
opened since: the logon gateway's connections, the SQL store's, Redis's), QuickFIX reads
from it, stealing its bytes, and keeps polling it until it fails. Seen here as clients
losing the Logout that refused their logon. The fix: once disconnected, the connection
neither polls nor reads again (two checks of m_disconnect, made atomic).

The second fix. QuickFIX 1.16.0 acceptors listen on every address (socket_createAcceptor
binds INADDR_ANY; the 1.16 settings have no bind address, and a ``SocketAcceptHost`` line is
silently ignored). The venue's acceptor must be reachable from its logon gateway only:
anybody reaching it directly could reset a session's sequence numbers with a Logon that
QuickFIX processes before the application may refuse it, or tie up a connection thread
per idle socket. The patch adds a ``SocketAcceptAddress`` setting to the threaded acceptors
(plain and SSL): the listening socket is bound to that address (the venue: 127.0.0.1).

The third change. QuickFIX calls the application's ``toApp`` (``toAdmin``) for every
message it sends, inside ``Session::sendRaw`` while it holds the session's mutex. From
Python that callback must take the interpreter lock, even when it does nothing: the
venue's outbox thread, which sends every ExecutionReport, queued for the lock twice per
message (measured: a report waited 15 ms at the median between being published and being
sent, at 3,000 orders/s). The patch adds ``ToAppCallback`` and ``ToAdminCallback``
settings (default Y, as QuickFIX behaves); with N the session sends without calling the
application. The venue sets both to N: it changes nothing in what it sends. Measured
with bench/fix_order_entry.py, both the venue and the bare acceptor (same settings) sent
faster; the venue/bare ratio stayed at 0.45.

The fourth change. The Python wrapper (SWIG, built with threads) lets go of the interpreter
lock around *every* call into C++, even ``Message.getField`` or ``SessionID.getTargetCompID``,
and must take it back afterwards. In a process where other threads want the lock (the
venue's sequencer, journal, outbox, gateways) each such call is a hand-off: the calling
thread may wait for another thread's switch interval to get back. Profiled under the
order-entry benchmark, QuickFIX's session threads spent most of their time waiting to get
the lock back after ``Message.toString`` and ``getHeader``. The patch keeps the lock in the
wrappers that cannot block: everything but the classes that take QuickFIX's locks, wait
on sockets or threads, or call back into Python (sessions, acceptors, initiators, stores,
logs, settings, applications; see ``KEEPS_RELEASING``). Keeping the lock there cannot
deadlock: those calls touch only the message or value they are given. Measured A/B with
bench/fix_order_entry.py (2 x 2 rounds, wheels swapped): the venue went from 2,902 and
2,923 orders/s to 3,538 and 3,737 (venue/bare 0.47 and 0.50 to 0.57 and 0.54).

The fifth change. ``Session.sendToTargets(items)``: many sends in one call that lets go of
the interpreter lock once (see ``SEND_MANY``). Each ``sendToTarget`` must let go of it (it
takes the session's mutex, which a QuickFIX thread holds while it calls into Python) and
take it back afterwards, behind the busy threads: measured in bench/market_data.py, the
market-data dispatcher's first 2,000 sends took 1.6 s of wall time for 0.06 s of CPU
while the engine was busy. The venue's outbox now sends each durable batch's reports in
one call, and the market-data dispatcher each round's messages.

The sixth change. ``Application.queueCallbacks()``: the application's ``fromApp``,
``onLogon`` and ``onLogout`` callbacks are queued in C++ (a copy of the message and the
session id) instead of called, and one Python thread takes them in batches with
``Application.takeQueued(max, timeout)`` (see ``QUEUED``). A director callback takes the
interpreter lock for every message: under load, QuickFIX's connection threads (one per
session) spent most of their busy time waiting for it (profiled: about a third of all
samples of the venue process), each message a hand-off between the lock's holders. Queued,
the connection threads parse, validate and count sequence numbers on the other core without
the lock, and one thread decodes and submits a whole batch in one hold. The queue is bounded
(a full queue makes the connection thread wait, which leaves the client's bytes in the
socket: back-pressure as before); onLogout is queued behind the session's messages, so a
cancel-on-disconnect never overtakes an order the session sent before it went away. A
queued ``fromApp`` cannot raise QuickFIX's reject exceptions: the application sends the
BusinessMessageReject itself (it raised only UnsupportedMessageType).

The seventh change: the parsing of the messages the venue sends and the formatting of those
it receives move out of the interpreter lock. ``Session.sendToTargets`` also takes a
message as its raw FIX string (parsed in C++ after the lock is let go), and a queued
``fromApp`` carries the message's string, formatted on the connection thread, beside the
message (``takeQueued`` items are ``(kind, Message, SessionID, str)``). Profiled at 4,000
orders/s, parsing each ExecutionReport (``Message.setString``) was 9% of all the time the
interpreter lock was held, formatting each order for decoding (``toString``) 3%.

The eighth change: ``Session::logout(reason)`` records the reason before it disables the
session. QuickFIX disabled it first, and a connection thread that checked the session in
between (it does after every message it reads) sent the Logout without its Text(58): a
session the venue logs out for flooding was told so without the reason, about one run in
five of tests/sessions/test_session_behaviour.py's throttle test once the inbox answered
the flood faster.

The wheel is version ``1.16.0+venue.8`` (a PEP 440 local version, so ``quickfix==1.16.0``
still matches), built once (about 8 minutes here) and kept in ``$VENUE_WHEELS`` (default
``~/.cache/venue/wheels``). Run again, the script does nothing if it is installed.
"""
from __future__ import annotations

import glob
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

VERSION = "1.16.0"
LOCAL = "1.16.0+venue.8"
WHEELS = os.environ.get("VENUE_WHEELS", os.path.join(os.path.expanduser("~"), ".cache", "venue", "wheels"))

# The fifth change: Session.sendToTargets(items), items a sequence of (Message, SessionID)
# or (Message, SessionID, tag, value), where the Message may also be given as its FIX string
# (the seventh change: parsed without the lock): each message is sent as sendToTarget would (with
# field ``tag`` set to ``value`` first, so one message object can go to many sessions with
# their own MDReqID), all in one call that lets go of the interpreter lock once instead of
# once per message. A thread that gives the lock up waits behind the busy threads to take
# it back; a report or market-data message per send paid that wait every time. Returns
# the indices of the items whose session was not found (an error of another kind is
# raised after the loop, naming its first item).
SEND_MANY = r"""// venue patch: Session.sendToTargets
SWIGINTERN PyObject *_wrap_Session_sendToTargets(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *items = 0;
  if (!PyArg_ParseTuple(args, "O:Session_sendToTargets", &items)) return NULL;
  PyObject *fast = PySequence_Fast(items, "Session_sendToTargets takes a sequence of tuples");
  if (!fast) return NULL;
  struct Item { FIX::Message *message; FIX::SessionID *sessionID; int tag; std::string value; std::string raw; };
  std::vector<Item> todo;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
  todo.reserve((size_t)n);
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *t = PySequence_Fast_GET_ITEM(fast, i);
    if (!PyTuple_Check(t) || (PyTuple_GET_SIZE(t) != 2 && PyTuple_GET_SIZE(t) != 4)) {
      PyErr_Format(PyExc_TypeError, "Session_sendToTargets: item %zd is not (message, session id[, tag, value])", i);
      Py_DECREF(fast);
      return NULL;
    }
    void *pm = 0, *ps = 0;
    PyObject *first = PyTuple_GET_ITEM(t, 0);
    const char *raw = 0;
    Py_ssize_t rawLen = 0;
    if (PyUnicode_Check(first)) {  // the message as its FIX string: parsed below, without the lock
      raw = PyUnicode_AsUTF8AndSize(first, &rawLen);
      if (!raw) {
        Py_DECREF(fast);
        return NULL;
      }
    }
    if ((!raw && (!SWIG_IsOK(SWIG_ConvertPtr(first, &pm, SWIGTYPE_p_FIX__Message, 0)) || !pm))
        || !SWIG_IsOK(SWIG_ConvertPtr(PyTuple_GET_ITEM(t, 1), &ps, SWIGTYPE_p_FIX__SessionID, 0)) || !ps) {
      PyErr_Format(PyExc_TypeError, "Session_sendToTargets: item %zd is not (Message or str, SessionID, ...)", i);
      Py_DECREF(fast);
      return NULL;
    }
    Item item{reinterpret_cast<FIX::Message *>(pm), reinterpret_cast<FIX::SessionID *>(ps), 0, std::string(),
              raw ? std::string(raw, (size_t)rawLen) : std::string()};
    if (PyTuple_GET_SIZE(t) == 4) {
      long tag = PyLong_AsLong(PyTuple_GET_ITEM(t, 2));
      Py_ssize_t len = 0;
      const char *value = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(t, 3), &len);
      if ((tag == -1 && PyErr_Occurred()) || tag <= 0 || !value) {
        if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "Session_sendToTargets: item %zd: bad tag", i);
        Py_DECREF(fast);
        return NULL;
      }
      item.tag = (int)tag;
      item.value.assign(value, (size_t)len);
    }
    todo.push_back(std::move(item));
  }
  std::vector<Py_ssize_t> notFound;
  Py_ssize_t failedAt = -1;
  std::string failure;
  {
    SWIG_PYTHON_THREAD_BEGIN_ALLOW;
    for (size_t i = 0; i < todo.size(); i++) {
      Item &item = todo[i];
      try {
        FIX::Message parsed;
        if (!item.message) {
          parsed.setString(item.raw, false);
          item.message = &parsed;
        }
        if (item.tag) item.message->setField(item.tag, item.value);
        FIX::Session::sendToTarget(*item.message, *item.sessionID);
      } catch (FIX::SessionNotFound &) {
        notFound.push_back((Py_ssize_t)i);
      } catch (std::exception &e) {
        if (failedAt < 0) { failedAt = (Py_ssize_t)i; failure = e.what(); }
      }
    }
    SWIG_PYTHON_THREAD_END_ALLOW;
  }
  Py_DECREF(fast);
  if (failedAt >= 0) {
    PyErr_Format(PyExc_RuntimeError, "Session_sendToTargets: item %zd: %s", failedAt, failure.c_str());
    return NULL;
  }
  PyObject *result = PyList_New((Py_ssize_t)notFound.size());
  if (!result) return NULL;
  for (size_t i = 0; i < notFound.size(); i++) PyList_SET_ITEM(result, (Py_ssize_t)i, PyLong_FromSsize_t(notFound[i]));
  return result;
}

"""

# The sixth change: queued application callbacks. ``Application.queueCallbacks(on, limit)``
# starts (or stops) queueing this application's fromApp/onLogon/onLogout; ``takeQueued(max,
# timeout)`` waits up to ``timeout`` seconds for queued callbacks and returns up to ``max``
# of them as ``(kind, Message or None, SessionID, str)`` (kind 0 fromApp, 1 onLogon, 2 onLogout;
# the str is the message as QuickFIX formats it, "" for the others),
# [] on timeout, None once the application is not queueing (and nothing is left).
QUEUED = r"""// venue patch: queued application callbacks
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
namespace venue_queue {
struct Item { int kind; FIX::Message *message; FIX::SessionID *sessionID; std::string raw; };
struct Queue {
  std::mutex mutex;
  std::condition_variable ready, space;
  std::deque<Item> items;
  bool on = true;
  size_t limit = 65536;
  ~Queue() { for (Item &i : items) { delete i.message; delete i.sessionID; } }
};
static std::mutex registryMutex;
static std::map<const FIX::Application *, std::shared_ptr<Queue>> registry;
static std::atomic<int> queueing(0);
static std::shared_ptr<Queue> find(const FIX::Application *app) {
  std::lock_guard<std::mutex> lock(registryMutex);
  auto it = registry.find(app);
  return it == registry.end() ? std::shared_ptr<Queue>() : it->second;
}
// true if the callback was queued (the caller returns at once); false: call Python as usual
static bool push(const FIX::Application *app, int kind, const FIX::Message *message, const FIX::SessionID &sessionID) {
  if (queueing.load() == 0) return false;
  std::shared_ptr<Queue> q = find(app);
  if (!q) return false;
  std::string raw;
  if (message) message->toString(raw);  // formatted here, on the connection thread, not under the interpreter lock
  std::unique_lock<std::mutex> lock(q->mutex);
  q->space.wait(lock, [&] { return q->items.size() < q->limit || !q->on; });
  if (!q->on) return false;
  q->items.push_back(Item{kind, message ? new FIX::Message(*message) : nullptr, new FIX::SessionID(sessionID),
                          std::move(raw)});
  q->ready.notify_one();
  return true;
}
}

"""

QUEUE_WRAPPERS = r"""// venue patch: Application.queueCallbacks / Application.takeQueued
SWIGINTERN PyObject *_wrap_Application_queueCallbacks(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *pyapp = 0;
  int on = 1;
  Py_ssize_t limit = 65536;
  if (!PyArg_ParseTuple(args, "Opn:Application_queueCallbacks", &pyapp, &on, &limit)) return NULL;
  void *papp = 0;
  if (!SWIG_IsOK(SWIG_ConvertPtr(pyapp, &papp, SWIGTYPE_p_FIX__Application, 0)) || !papp) {
    PyErr_SetString(PyExc_TypeError, "Application_queueCallbacks: not an Application");
    return NULL;
  }
  if (limit < 1) limit = 1;
  const FIX::Application *app = reinterpret_cast<FIX::Application *>(papp);
  std::shared_ptr<venue_queue::Queue> old;
  {
    std::lock_guard<std::mutex> lock(venue_queue::registryMutex);
    auto it = venue_queue::registry.find(app);
    if (on) {
      if (it == venue_queue::registry.end()) {
        auto q = std::make_shared<venue_queue::Queue>();
        q->limit = (size_t)limit;
        venue_queue::registry[app] = q;
        venue_queue::queueing++;
      }
    } else if (it != venue_queue::registry.end()) {
      old = it->second;
      venue_queue::registry.erase(it);
      venue_queue::queueing--;
    }
  }
  if (old) {
    std::lock_guard<std::mutex> lock(old->mutex);
    old->on = false;
    old->ready.notify_all();
    old->space.notify_all();
  }
  Py_RETURN_NONE;
}

SWIGINTERN PyObject *_wrap_Application_takeQueued(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *pyapp = 0;
  Py_ssize_t maxItems = 0;
  double timeout = 0;
  if (!PyArg_ParseTuple(args, "Ond:Application_takeQueued", &pyapp, &maxItems, &timeout)) return NULL;
  void *papp = 0;
  if (!SWIG_IsOK(SWIG_ConvertPtr(pyapp, &papp, SWIGTYPE_p_FIX__Application, 0)) || !papp) {
    PyErr_SetString(PyExc_TypeError, "Application_takeQueued: not an Application");
    return NULL;
  }
  std::shared_ptr<venue_queue::Queue> q = venue_queue::find(reinterpret_cast<FIX::Application *>(papp));
  if (!q) Py_RETURN_NONE;
  std::vector<venue_queue::Item> taken;
  Py_BEGIN_ALLOW_THREADS
  {
    std::unique_lock<std::mutex> lock(q->mutex);
    if (q->items.empty() && q->on && timeout > 0) {
      q->ready.wait_for(lock, std::chrono::duration<double>(timeout), [&] { return !q->items.empty() || !q->on; });
    }
    while (!q->items.empty() && (maxItems <= 0 || (Py_ssize_t)taken.size() < maxItems)) {
      taken.push_back(std::move(q->items.front()));
      q->items.pop_front();
    }
    if (!taken.empty()) q->space.notify_all();
  }
  Py_END_ALLOW_THREADS
  PyObject *result = PyList_New((Py_ssize_t)taken.size());
  if (!result) return NULL;
  for (size_t i = 0; i < taken.size(); i++) {
    venue_queue::Item &item = taken[i];
    PyObject *m;
    if (item.message) {
      m = SWIG_NewPointerObj(SWIG_as_voidptr(item.message), SWIGTYPE_p_FIX__Message, SWIG_POINTER_OWN);
    } else {
      Py_INCREF(Py_None);
      m = Py_None;
    }
    PyObject *s = SWIG_NewPointerObj(SWIG_as_voidptr(item.sessionID), SWIGTYPE_p_FIX__SessionID, SWIG_POINTER_OWN);
    PyObject *raw = PyUnicode_DecodeUTF8(item.raw.data(), (Py_ssize_t)item.raw.size(), "replace");
    PyList_SET_ITEM(result, (Py_ssize_t)i, Py_BuildValue("(iNNN)", item.kind, m, s, raw));
  }
  return result;
}

"""

# (file, old text, new text): exact replacements; the build stops if one does not apply
PATCH = [
    ("C++/ThreadedSocketConnection.h", "  bool m_disconnect;", "  std::atomic<bool> m_disconnect;"),
    ("C++/ThreadedSocketConnection.h", "#include \"Parser.h\"", "#include \"Parser.h\"\n#include <atomic>"),
    ("C++/ThreadedSocketConnection.cpp",
     "bool ThreadedSocketConnection::read() {\n",
     "bool ThreadedSocketConnection::read() {\n"
     "  // venue patch: once disconnected the socket is closed and its number may already\n"
     "  // belong to another socket or file of this process: never poll or read it again.\n"
     "  if (m_disconnect) {\n"
     "    return false;\n"
     "  }\n"),
    ("C++/ThreadedSocketConnection.cpp",
     "    try {\n      m_pSession->next(msg, UtcTimeStamp::now());\n",
     "    if (m_disconnect) {\n      return; // venue patch: nothing more for a disconnected session\n    }\n"
     "    try {\n      m_pSession->next(msg, UtcTimeStamp::now());\n"),
    ("C++/Utility.h", "socket_handle socket_createAcceptor(int port, bool reuse = false);\n",
     "socket_handle socket_createAcceptor(int port, bool reuse = false);\n"
     "socket_handle socket_createAcceptor(int port, bool reuse, const std::string &address);\n"),
    ("C++/Utility.cpp", "socket_handle socket_createAcceptor(int port, bool reuse) {\n",
     "// venue patch: an acceptor listening on one address only (SocketAcceptAddress); empty = all\n"
     "socket_handle socket_createAcceptor(int port, bool reuse, const std::string &address) {\n"
     "  if (address.empty()) {\n"
     "    return socket_createAcceptor(port, reuse);\n"
     "  }\n"
     "  if (inet_addr(address.c_str()) == INADDR_NONE) {\n"
     "    return INVALID_SOCKET_HANDLE;\n"
     "  }\n"
     "  socket_handle socket = ::socket(PF_INET, SOCK_STREAM, 0);\n"
     "  if (socket == INVALID_SOCKET_HANDLE) {\n"
     "    return INVALID_SOCKET_HANDLE;\n"
     "  }\n"
     "  if (reuse) {\n"
     "    socket_setsockopt(socket, SO_REUSEADDR);\n"
     "  }\n"
     "  if (socket_bind(socket, address.c_str(), port) == BIND_SOCKET_ERROR\n"
     "      || listen(socket, SOMAXCONN) == LISTEN_SOCKET_ERROR) {\n"
     "    socket_close(socket);\n"
     "    return INVALID_SOCKET_HANDLE;\n"
     "  }\n"
     "  return socket;\n"
     "}\n\n"
     "socket_handle socket_createAcceptor(int port, bool reuse) {\n"),
    *[(f"C++/{name}", "    socket_handle socket = socket_createAcceptor(port, reuseAddress);\n",
       "    // venue patch: SocketAcceptAddress binds the listening socket to one address\n"
       "    const std::string acceptAddress\n"
       "        = settings.has(\"SocketAcceptAddress\") ? settings.getString(\"SocketAcceptAddress\") : \"\";\n"
       "    socket_handle socket = socket_createAcceptor(port, reuseAddress, acceptAddress);\n")
      for name in ("ThreadedSocketAcceptor.cpp", "ThreadedSSLSocketAcceptor.cpp")],
    # ToAppCallback / ToAdminCallback = N: send without calling the application back
    ("C++/Session.h", "  bool m_refreshOnLogon;\n",
     "  bool m_refreshOnLogon;\n  bool m_toAppCallback = true; // venue patch\n"
     "  bool m_toAdminCallback = true; // venue patch\n"),
    ("C++/Session.h", "  void setRefreshOnLogon(bool value) { m_refreshOnLogon = value; }\n",
     "  void setRefreshOnLogon(bool value) { m_refreshOnLogon = value; }\n"
     "  void setToAppCallback(bool value) { m_toAppCallback = value; } // venue patch\n"
     "  void setToAdminCallback(bool value) { m_toAdminCallback = value; } // venue patch\n"),
    ("C++/SessionFactory.cpp",
     "  if (settings.has(REFRESH_ON_LOGON)) {\n    pSession->setRefreshOnLogon(settings.getBool(REFRESH_ON_LOGON));\n  }\n",
     "  if (settings.has(REFRESH_ON_LOGON)) {\n    pSession->setRefreshOnLogon(settings.getBool(REFRESH_ON_LOGON));\n  }\n"
     "  // venue patch: sessions that send without calling the application back\n"
     "  if (settings.has(\"ToAppCallback\")) {\n    pSession->setToAppCallback(settings.getBool(\"ToAppCallback\"));\n  }\n"
     "  if (settings.has(\"ToAdminCallback\")) {\n"
     "    pSession->setToAdminCallback(settings.getBool(\"ToAdminCallback\"));\n  }\n"),
    ("C++/Session.cpp", "      m_application.toAdmin(message, m_sessionID);\n",
     "      if (m_toAdminCallback) { // venue patch\n        m_application.toAdmin(message, m_sessionID);\n      }\n"),
    ("C++/Session.cpp", "        m_application.toApp(message, m_sessionID);\n        message.toString(messageString);\n",
     "        if (m_toAppCallback) { // venue patch\n          m_application.toApp(message, m_sessionID);\n        }\n"
     "        message.toString(messageString);\n"),
    ("C++/Session.cpp", "    m_application.toApp(message, m_sessionID);\n    return true;\n",
     "    if (m_toAppCallback) { // venue patch\n      m_application.toApp(message, m_sessionID);\n    }\n    return true;\n"),
    # Session.sendToTargets: many sends in one call, the interpreter lock let go once
    ("C++/QuickfixPython.cpp", "SWIGINTERN PyObject *_wrap_Session_sendToTarget__SWIG_0(",
     SEND_MANY + "SWIGINTERN PyObject *_wrap_Session_sendToTarget__SWIG_0("),
    ("C++/QuickfixPython.cpp",
     '\t { "Session_sendToTarget", _wrap_Session_sendToTarget, METH_VARARGS, NULL},\n',
     '\t { "Session_sendToTarget", _wrap_Session_sendToTarget, METH_VARARGS, NULL},\n'
     '\t { "Session_sendToTargets", _wrap_Session_sendToTargets, METH_VARARGS, NULL},\n'),
    ("quickfix.py",
     "    @staticmethod\n    def sendToTarget(*args):\n        return _quickfix.Session_sendToTarget(*args)\n",
     "    @staticmethod\n    def sendToTarget(*args):\n        return _quickfix.Session_sendToTarget(*args)\n\n"
     "    @staticmethod\n    def sendToTargets(items):\n        return _quickfix.Session_sendToTargets(items)\n"),
    # queued callbacks: fromApp, onLogon and onLogout of a queueing application are queued
    ("C++/QuickfixPython.cpp", "SwigDirector_Application::SwigDirector_Application(PyObject *self):",
     QUEUED + "SwigDirector_Application::SwigDirector_Application(PyObject *self):"),
    *[("C++/QuickfixPython.cpp", f"void SwigDirector_Application::{name}({sig}) {{\n  SWIG_PYTHON_THREAD_BEGIN_BLOCK;\n",
       f"void SwigDirector_Application::{name}({sig}) {{\n"
       f"  if (venue_queue::push(static_cast<const FIX::Application *>(this), {push})) return; // venue patch\n"
       "  SWIG_PYTHON_THREAD_BEGIN_BLOCK;\n")
      for name, sig, push in (("fromApp", "FIX::Message const &arg0,FIX::SessionID const &arg1", "0, &arg0, arg1"),
                              ("onLogon", "FIX::SessionID const &arg0", "1, nullptr, arg0"),
                              ("onLogout", "FIX::SessionID const &arg0", "2, nullptr, arg0"))],
    ("C++/QuickfixPython.cpp", "SWIGINTERN PyObject *_wrap_Application_fromApp(PyObject *self, PyObject *args) {",
     QUEUE_WRAPPERS + "SWIGINTERN PyObject *_wrap_Application_fromApp(PyObject *self, PyObject *args) {"),
    ("C++/QuickfixPython.cpp",
     '\t { "Application_fromApp", _wrap_Application_fromApp, METH_VARARGS, NULL},\n',
     '\t { "Application_fromApp", _wrap_Application_fromApp, METH_VARARGS, NULL},\n'
     '\t { "Application_queueCallbacks", _wrap_Application_queueCallbacks, METH_VARARGS, NULL},\n'
     '\t { "Application_takeQueued", _wrap_Application_takeQueued, METH_VARARGS, NULL},\n'),
    ("quickfix.py", "    __swig_destroy__ = _quickfix.delete_Application\n",
     "    __swig_destroy__ = _quickfix.delete_Application\n\n"
     "    def queueCallbacks(self, on=True, limit=65536):\n"
     "        return _quickfix.Application_queueCallbacks(self, on, limit)\n\n"
     "    def takeQueued(self, maxItems, timeout):\n"
     "        return _quickfix.Application_takeQueued(self, maxItems, timeout)\n"),
    # Session::logout: the reason first, then disabled (a Logout sent in between had no Text)
    ("C++/Session.h", "    m_state.enabled(false);\n    m_state.logoutReason(reason);\n",
     "    m_state.logoutReason(reason); // venue patch: before the session is seen disabled\n"
     "    m_state.enabled(false);\n"),
    ("setup.cfg", f"version = {VERSION}", f"version = {LOCAL}"),
]


# wrappers (by name) that still let go of the interpreter lock: they may block on QuickFIX's
# locks, sockets or threads, or call back into Python (which needs the lock)
KEEPS_RELEASING = re.compile(r"Acceptor|Initiator|Session(?!ID_)|Store|Log|Application|Connection|Query|Socket"
                             r"|Thread|Settings|Responder|Mutex|Synchronized|Factory")


def keep_the_lock(path: str) -> None:
    """Drop the lock release from the SWIG wrappers that cannot block (the fourth change)."""
    text = open(path).read()
    parts = re.split(r"(?=^SWIGINTERN PyObject \*_wrap_)", text, flags=re.M)
    kept = 0
    for i, part in enumerate(parts):
        m = re.match(r"SWIGINTERN PyObject \*_wrap_(\w+)\(", part)
        if m is None or KEEPS_RELEASING.search(m.group(1)) or "SWIG_PYTHON_THREAD_BEGIN_ALLOW;" not in part:
            continue
        kept += part.count("SWIG_PYTHON_THREAD_BEGIN_ALLOW;")
        parts[i] = (part.replace("SWIG_PYTHON_THREAD_BEGIN_ALLOW;", "/* venue patch: keeps the lock */")
                    .replace("SWIG_PYTHON_THREAD_END_ALLOW;", ""))
    if kept < 500:  # the 1.16.0 wrapper has about 690 such calls: a different file is not ours to patch
        raise SystemExit(f"the venue's QuickFIX patch does not apply to {path}: {kept} wrapper calls found")
    with open(path, "w") as f:
        f.write("".join(parts))


def installed() -> str | None:
    try:
        return importlib.metadata.version("quickfix")
    except importlib.metadata.PackageNotFoundError:
        return None


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], check=True)


def build(into: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        pip("download", f"quickfix=={VERSION}", "--no-binary", ":all:", "--no-deps", "-d", tmp, "-q")
        sdist = glob.glob(os.path.join(tmp, f"quickfix-{VERSION}.tar.gz"))[0]
        with tarfile.open(sdist) as t:
            t.extractall(tmp, filter="data")
        src = os.path.join(tmp, f"quickfix-{VERSION}")
        for rel, old, new in PATCH:
            path = os.path.join(src, rel)
            text = open(path).read()
            if text.count(old) != 1:
                raise SystemExit(f"the venue's QuickFIX patch does not apply to {rel}: {old[:60]!r}")
            with open(path, "w") as f:
                f.write(text.replace(old, new))
        keep_the_lock(os.path.join(src, "C++", "QuickfixPython.cpp"))
        print(f"building QuickFIX {LOCAL} from source (about 8 minutes, once)...", flush=True)
        os.makedirs(into, exist_ok=True)
        pip("wheel", "--no-deps", "-w", into, src, "-q")
    return wheel_in(into) or ""


def wheel_in(d: str) -> str | None:
    found = sorted(glob.glob(os.path.join(d, f"quickfix-{LOCAL}-*.whl")))
    return found[-1] if found else None


def main() -> None:
    if installed() == LOCAL:
        return
    wheel = wheel_in(WHEELS) or build(WHEELS)
    if not wheel:
        raise SystemExit("QuickFIX wheel was not built")
    pip("install", "--force-reinstall", "--no-deps", "-q", wheel)
    print(f"installed QuickFIX {installed()}")


if __name__ == "__main__":
    if shutil.which("g++") is None and shutil.which("c++") is None:
        raise SystemExit("a C++ compiler is needed to build QuickFIX (Debian: apt-get install g++)")
    main()
