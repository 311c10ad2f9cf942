// The Win32 window procedure pattern, on any OS.
//
// A C window system knows a window only by its handle and one procedure pointer, and calls
// proc(hwnd, msg, wparam, lparam). Wrapping that in C++ classes usually means a static procedure that looks the
// object up from the handle. With a thunk, each window's procedure is bound to its object before the window even
// exists, and virtual dispatch picks the derived class's handler.
//
// Shown here: a user heap locked with std::mutex, the compile-time member form on a virtual member, and the run-time
// form make_thunk<Callback>(object, member_pointer) for a member chosen while the program runs ("subclassing").

#include <member_thunk/member_thunk.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>

// --- A stand-in for the C window system ---------------------------------------------------------------------------
extern "C"
{
	typedef std::intptr_t (*window_proc)(void* hwnd, unsigned msg, std::uintptr_t wparam, std::intptr_t lparam);

	enum : unsigned
	{
		msg_paint = 1,  // lparam: the text to draw (const char*); returns the number of characters drawn
		msg_click = 2,  // wparam: the button; returns the number of clicks so far
		msg_get_id = 3, // returns the window's id
	};

	struct ws_window
	{
		window_proc proc;
	};

	static ws_window ws_windows[8];
	static int ws_window_count = 0;

	static void* ws_create_window(window_proc proc)
	{
		if (ws_window_count == 8)
			return nullptr;
		ws_windows[ws_window_count].proc = proc;
		return &ws_windows[ws_window_count++];
	}

	// Like SetWindowLongPtr(hwnd, GWLP_WNDPROC, proc): returns the previous procedure.
	static window_proc ws_set_proc(void* hwnd, window_proc proc)
	{
		auto* const w = static_cast<ws_window*>(hwnd);
		const window_proc old = w->proc;
		w->proc = proc;
		return old;
	}

	static std::intptr_t ws_send(void* hwnd, unsigned msg, std::uintptr_t wparam, std::intptr_t lparam)
	{
		return static_cast<ws_window*>(hwnd)->proc(hwnd, msg, wparam, lparam);
	}
}

// --- The C++ side ------------------------------------------------------------------------------------------------
class window
{
public:
	explicit window(int id) : id_(id) {}
	window(const window&) = delete;
	window& operator=(const window&) = delete;
	virtual ~window() = default;

	// Makes this window's procedure on `page`. &window::on_message is virtual, so each call still reaches the
	// derived class's override, just as a direct call would.
	void bind(member_thunk::page& page) { proc_ = page.make_thunk<window_proc, &window::on_message>(this); }

	// Only after the page is executable: the system may call the procedure during creation.
	bool create()
	{
		hwnd_ = ws_create_window(proc_);
		return hwnd_ != nullptr;
	}

	void* hwnd() const { return hwnd_; }

protected:
	virtual std::intptr_t on_message(unsigned msg, std::uintptr_t wparam, std::intptr_t lparam)
	{
		static_cast<void>(wparam);
		static_cast<void>(lparam);
		return msg == msg_get_id ? id_ : 0;
	}

	int id() const { return id_; }

private:
	int id_;
	void* hwnd_ = nullptr;
	window_proc proc_ = nullptr;
};

class label final : public window
{
public:
	using window::window;

protected:
	std::intptr_t on_message(unsigned msg, std::uintptr_t wparam, std::intptr_t lparam) override
	{
		if (msg != msg_paint)
			return window::on_message(msg, wparam, lparam);
		const char* const text = reinterpret_cast<const char*>(lparam);
		std::printf("label %d draws \"%s\"\n", id(), text);
		return static_cast<std::intptr_t>(std::strlen(text));
	}
};

class button final : public window
{
public:
	using window::window;

protected:
	std::intptr_t on_message(unsigned msg, std::uintptr_t wparam, std::intptr_t lparam) override
	{
		if (msg != msg_click)
			return window::on_message(msg, wparam, lparam);
		++clicks_;
		std::printf("button %d clicked with mouse button %ju (%d clicks)\n", id(), static_cast<std::uintmax_t>(wparam),
		            clicks_);
		return clicks_;
	}

private:
	int clicks_ = 0;
};

// Watches one window's messages and passes them on, like a Win32 subclass procedure. Whether it is chatty or quiet
// is decided at run time, so the member to bind is a run-time value.
class message_spy
{
public:
	std::intptr_t trace(unsigned msg, std::uintptr_t wparam, std::intptr_t lparam)
	{
		std::printf("  spy: message %u reached window %p\n", msg, hwnd_);
		return count(msg, wparam, lparam);
	}

	std::intptr_t count(unsigned msg, std::uintptr_t wparam, std::intptr_t lparam)
	{
		++messages_;
		// The thunk replaced the handle with `this`, so the spy remembers the handle to pass it on.
		return next_(hwnd_, msg, wparam, lparam);
	}

	void attach(void* hwnd, window_proc proc)
	{
		hwnd_ = hwnd;
		next_ = ws_set_proc(hwnd, proc);
	}

	int messages() const { return messages_; }

private:
	void* hwnd_ = nullptr;
	window_proc next_ = nullptr;
	int messages_ = 0;
};

int main(int argc, char**)
{
	// A heap of one's own, shared by threads through std::mutex (any BasicLockable type works). It must outlive
	// its pages, so it is declared first.
	member_thunk::heap<std::mutex> heap;
	try
	{
		label title(1);
		button ok(2);
		message_spy spy;
		const bool chatty = argc < 2; // pass any argument to get the quiet spy

		// One page holds the procedures of all three objects.
		member_thunk::page page = heap.allocate_page();
		title.bind(page);
		ok.bind(page);
		const window_proc spy_proc =
		    page.make_thunk<window_proc>(&spy, chatty ? &message_spy::trace : &message_spy::count);
		page.mark_executable();
		std::printf("page: %zu thunks of %zu bytes, room for at most %zu\n", page.size(), page.slot_size(),
		            page.capacity());

		if (!title.create() || !ok.create())
			return 1;
		spy.attach(ok.hwnd(), spy_proc);

		int failures = 0;
		const auto expect = [&failures](const char* what, std::intptr_t got, std::intptr_t want) {
			if (got != want)
			{
				std::printf("error: %s returned %jd, expected %jd\n", what, static_cast<std::intmax_t>(got),
				            static_cast<std::intmax_t>(want));
				++failures;
			}
		};
		const char* const text = "Hello, thunks";
		expect("paint", ws_send(title.hwnd(), msg_paint, 0, reinterpret_cast<std::intptr_t>(text)), 13);
		expect("click", ws_send(ok.hwnd(), msg_click, 1, 0), 1);
		expect("click", ws_send(ok.hwnd(), msg_click, 3, 0), 2);
		expect("label id", ws_send(title.hwnd(), msg_get_id, 0, 0), 1);
		expect("button id", ws_send(ok.hwnd(), msg_get_id, 0, 0), 2);
		expect("spied messages", spy.messages(), 3);

		const member_thunk::heap_statistics stats = heap.statistics();
		std::printf("heap: %zu live page(s), %zu bytes committed\n", stats.live_pages, stats.committed_bytes);
		if (failures != 0)
			return 1;
		std::puts("window_proc: OK");
		return 0;
	}
	catch (const member_thunk::exception& e)
	{
		std::printf("member_thunk failed: %s\n", e.what());
		return 1;
	}
}
