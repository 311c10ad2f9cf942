// member_thunk: pass a C++ member function (with its object bound), or any callable, where a plain C function
// pointer is expected.
//
//   member_thunk::page p = member_thunk::allocate_page();
//   WNDPROC proc = p.make_thunk<WNDPROC, &window::on_message>(this);
//   p.mark_executable();
//   // Windows calls proc(hwnd, msg, wp, lp); the thunk calls this->on_message(msg, wp, lp).
//
// Everything is in namespace member_thunk: page, heap, the locks, the exceptions and, unless
// MEMBER_THUNK_DISABLE_DEFAULT_HEAP is defined, the default heap's allocate_page() and compact().
#pragma once

#include "default_heap.hpp"
#include "exception.hpp"
#include "heap.hpp"
#include "lock.hpp"
#include "page.hpp"
#include "unique_thunk.hpp"
#include "version.hpp"
