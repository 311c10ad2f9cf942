// Real Win32 callbacks bound to C++ objects: a window procedure, a timer procedure and a WinEvent hook (Windows only).
//
// WNDPROC, TIMERPROC and WINEVENTPROC have no user-data parameter: Windows passes a handle it chose (the window, the
// window again, the hook) and nothing of yours. Each object below makes its own thunk for its callback, and the
// thunk puts the object in place of that handle, so Windows ends up calling a member function directly: no global
// table mapping handles to objects, no GWLP_USERDATA.
//
// What happens: a message-only window (no display needed) is created from a class whose lpfnWndProc is a thunk; a
// timer thunk counts three ticks and then destroys the window, whose WM_DESTROY ends the message loop; a WinEvent
// hook thunk watches the window being created and renamed. A fourth thunk, made from a lambda, is a watchdog that
// ends the loop if the rest never does. The program checks what it saw and exits non-zero if anything is missing.

#define WIN32_LEAN_AND_MEAN
#define NOMINMAX
#include <windows.h>

#include <member_thunk/member_thunk.hpp>

#include <cstdio>

// --- The window -------------------------------------------------------------------------------------------------
// The thunk replaces the HWND argument with `this`, so on_message receives (msg, wparam, lparam) only: the window
// must know its own handle to call DefWindowProcW. CreateWindowExW returns it, but too late: Windows sends
// WM_NCCREATE, WM_NCCALCSIZE and WM_CREATE from inside CreateWindowExW. So the handle is caught one step earlier
// by a CBT hook, which Windows calls with HCBT_CREATEWND and the new handle before the window's first message.
class main_window
{
public:
	explicit main_window(member_thunk::page& page) : proc_(page.make_thunk<WNDPROC, &main_window::on_message>(this)) {}
	main_window(const main_window&) = delete; // the thunk is bound to this object's address
	main_window& operator=(const main_window&) = delete;

	~main_window()
	{
		// Windows may call the procedure until the window is destroyed and its class unregistered: both happen here,
		// before the page holding the thunk is destroyed (it outlives this object, see main).
		if (hwnd_ != nullptr)
			DestroyWindow(hwnd_);
		if (class_ != 0)
			UnregisterClassW(class_name, GetModuleHandleW(nullptr));
	}

	// Call only once the page is executable: CreateWindowExW calls the procedure at once.
	bool create()
	{
		// The class's procedure is the thunk itself, so the class belongs to this one object.
		WNDCLASSEXW wc{};
		wc.cbSize = sizeof wc;
		wc.lpfnWndProc = proc_;
		wc.hInstance = GetModuleHandleW(nullptr);
		wc.lpszClassName = class_name;
		class_ = RegisterClassExW(&wc);
		if (class_ == 0)
			return false;

		// A thread hook lives only around CreateWindowExW. Its HOOKPROC cannot be a thunk: its first parameter is
		// the hook code, an int, not pointer-sized on x64, and the library refuses it at compile time. So it is a
		// plain function, told which object to fill in by a thread_local and CreateWindowExW's lpParam.
		const HHOOK hook = SetWindowsHookExW(WH_CBT, &creation_hook, nullptr, GetCurrentThreadId());
		if (hook == nullptr)
			return false;
		being_created = this;
		const HWND hwnd = CreateWindowExW(0, class_name, L"member_thunk example", 0, 0, 0, 0, 0, HWND_MESSAGE, nullptr,
		                                  wc.hInstance, this);
		being_created = nullptr;
		UnhookWindowsHookEx(hook);
		if (hwnd == nullptr || hwnd != hwnd_)
		{
			std::printf("error: CreateWindowExW returned %p, the CBT hook saw %p\n", static_cast<void*>(hwnd),
			            static_cast<void*>(hwnd_));
			return false;
		}
		return true;
	}

	HWND hwnd() const noexcept { return hwnd_; }
	bool handled_create() const noexcept { return created_; }
	bool handled_destroy() const noexcept { return destroyed_; }

private:
	// Windows calls proc_(hwnd, msg, wparam, lparam); the thunk turns that into this->on_message(msg, wparam, lparam).
	LRESULT on_message(UINT msg, WPARAM wparam, LPARAM lparam)
	{
		switch (msg)
		{
		case WM_NCCREATE:
			std::printf("WM_NCCREATE handled by main_window (handle already known: %s)\n", hwnd_ ? "yes" : "no");
			if (hwnd_ == nullptr)
				return FALSE; // without the handle nothing below can work: fail the creation
			break;
		case WM_CREATE:
			std::puts("WM_CREATE handled by main_window");
			created_ = true;
			return 0;
		case WM_DESTROY:
			std::puts("WM_DESTROY handled by main_window: window destroyed");
			destroyed_ = true;
			PostQuitMessage(0);
			return 0;
		case WM_NCDESTROY: {
			// The last message: forget the handle, which Windows may reuse for another window.
			const HWND hwnd = hwnd_;
			hwnd_ = nullptr;
			return DefWindowProcW(hwnd, msg, wparam, lparam);
		}
		}
		return DefWindowProcW(hwnd_, msg, wparam, lparam);
	}

	static LRESULT CALLBACK creation_hook(int code, WPARAM wparam, LPARAM lparam)
	{
		// Other windows may be created on this thread meanwhile (an IME window, say): only ours has our lpParam.
		if (code == HCBT_CREATEWND && being_created != nullptr &&
		    reinterpret_cast<const CBT_CREATEWNDW*>(lparam)->lpcs->lpCreateParams == being_created)
		{
			being_created->hwnd_ = reinterpret_cast<HWND>(wparam);
			being_created = nullptr;
		}
		return CallNextHookEx(nullptr, code, wparam, lparam);
	}

	static constexpr const wchar_t* class_name = L"member_thunk.main_window";
	static thread_local main_window* being_created;

	WNDPROC proc_;
	ATOM class_ = 0;
	HWND hwnd_ = nullptr;
	bool created_ = false;
	bool destroyed_ = false;
};

thread_local main_window* main_window::being_created = nullptr;

// --- The timer --------------------------------------------------------------------------------------------------
// TIMERPROC is (hwnd, WM_TIMER, id, time): the thunk drops the hwnd, so the ticker keeps the window it was started on.
class ticker
{
public:
	ticker(member_thunk::page& page, int limit) :
	    proc_(page.make_thunk<TIMERPROC, &ticker::on_tick>(this)), limit_(limit)
	{
	}
	ticker(const ticker&) = delete;
	ticker& operator=(const ticker&) = delete;

	// A timer of a window dies with it; KillTimer covers the case where the window outlives the ticker.
	~ticker()
	{
		if (running_)
			KillTimer(hwnd_, id_);
	}

	bool start(HWND hwnd, UINT_PTR id, UINT milliseconds)
	{
		hwnd_ = hwnd;
		id_ = id;
		running_ = SetTimer(hwnd, id, milliseconds, proc_) != 0;
		return running_;
	}

	int ticks() const noexcept { return ticks_; }
	bool wrong_arguments() const noexcept { return wrong_arguments_; }

private:
	void on_tick(UINT msg, UINT_PTR id, DWORD time)
	{
		static_cast<void>(time);
		if (msg != WM_TIMER || id != id_)
			wrong_arguments_ = true;
		if (++ticks_ < limit_)
			return;
		KillTimer(hwnd_, id_);
		running_ = false;
		std::printf("timer ticked %d times: destroying the window\n", ticks_);
		DestroyWindow(hwnd_);
	}

	TIMERPROC proc_;
	int limit_;
	HWND hwnd_ = nullptr;
	UINT_PTR id_ = 0;
	bool running_ = false;
	int ticks_ = 0;
	bool wrong_arguments_ = false;
};

// --- The WinEvent hook ------------------------------------------------------------------------------------------
// WINEVENTPROC is (hook, event, hwnd, object, child, thread, time): the thunk replaces the hook handle with `this`.
// WINEVENT_OUTOFCONTEXT events are queued to this thread and delivered while it pumps messages.
class event_watcher
{
public:
	explicit event_watcher(member_thunk::page& page) :
	    proc_(page.make_thunk<WINEVENTPROC, &event_watcher::on_event>(this))
	{
	}
	event_watcher(const event_watcher&) = delete;
	event_watcher& operator=(const event_watcher&) = delete;
	~event_watcher() { stop(); }

	// Object creation to name change (EVENT_OBJECT_CREATE, DESTROY, SHOW, ... NAMECHANGE), from this process only.
	bool start()
	{
		hook_ = SetWinEventHook(EVENT_OBJECT_CREATE, EVENT_OBJECT_NAMECHANGE, nullptr, proc_, GetCurrentProcessId(), 0,
		                        WINEVENT_OUTOFCONTEXT);
		return hook_ != nullptr;
	}

	// After UnhookWinEvent returns, Windows calls the thunk no more.
	bool stop()
	{
		if (hook_ == nullptr)
			return true;
		const bool unhooked = UnhookWinEvent(hook_) != FALSE;
		hook_ = nullptr;
		return unhooked;
	}

	void watch(HWND hwnd) noexcept { watched_ = hwnd; }
	int created() const noexcept { return created_; }
	int renamed() const noexcept { return renamed_; }

private:
	void on_event(DWORD event, HWND hwnd, LONG object, LONG child, DWORD thread, DWORD time)
	{
		static_cast<void>(thread);
		static_cast<void>(time);
		if (hwnd != watched_ || watched_ == nullptr || object != OBJID_WINDOW || child != CHILDID_SELF)
			return;
		if (event == EVENT_OBJECT_CREATE)
		{
			std::puts("WinEvent EVENT_OBJECT_CREATE for the window");
			++created_;
		}
		else if (event == EVENT_OBJECT_NAMECHANGE)
		{
			std::puts("WinEvent EVENT_OBJECT_NAMECHANGE for the window");
			++renamed_;
		}
	}

	WINEVENTPROC proc_;
	HWINEVENTHOOK hook_ = nullptr;
	HWND watched_ = nullptr;
	int created_ = 0;
	int renamed_ = 0;
};

int main()
{
	try
	{
		// Windows calls these thunks until the window is destroyed, the timers killed and the hook removed. The
		// objects undo all that in their destructors, so the page they share is declared first and destroyed last.
		member_thunk::page page = member_thunk::allocate_page();
		main_window window(page);
		ticker timer(page, 3);
		event_watcher watcher(page);

		// The callable form: a lambda referenced by its thunk (it must outlive the thunk's use). If the timer never
		// destroys the window, this thread timer gives up after 2 s and ends the loop with a failure.
		bool timed_out = false;
		auto give_up = [&timed_out](UINT, UINT_PTR, DWORD) {
			timed_out = true;
			PostQuitMessage(1);
		};
		const TIMERPROC watchdog = page.make_thunk<TIMERPROC>(give_up);

		page.mark_executable(); // one system call seals all four thunks; Windows may call them from now on
		std::printf("page: %zu thunks sealed\n", page.size());

		if (!watcher.start())
		{
			std::printf("error: SetWinEventHook failed (%lu)\n", GetLastError());
			return 1;
		}
		if (!window.create())
		{
			std::printf("error: the window was not created (%lu)\n", GetLastError());
			return 1;
		}
		watcher.watch(window.hwnd());
		// Windows raises EVENT_OBJECT_CREATE by itself; a control whose accessible name changes announces it like
		// this. (Wine 8 raises only the creation by itself, not a name change from SetWindowTextW.)
		NotifyWinEvent(EVENT_OBJECT_NAMECHANGE, window.hwnd(), OBJID_WINDOW, CHILDID_SELF);
		const UINT_PTR watchdog_id = SetTimer(nullptr, 0, 2000, watchdog);
		if (watchdog_id == 0 || !timer.start(window.hwnd(), 1, 10))
		{
			std::printf("error: SetTimer failed (%lu)\n", GetLastError());
			return 1;
		}

		// Every callback above runs from here, on this thread: DispatchMessageW calls the timer procedures, and
		// GetMessageW delivers the out-of-context WinEvents.
		MSG msg;
		BOOL got;
		while ((got = GetMessageW(&msg, nullptr, 0, 0)) > 0)
		{
			TranslateMessage(&msg);
			DispatchMessageW(&msg);
		}
		KillTimer(nullptr, watchdog_id);
		// Out-of-context events still queued are lost after the loop: drain them with a last PeekMessageW.
		while (PeekMessageW(&msg, nullptr, 0, 0, PM_REMOVE))
			DispatchMessageW(&msg);
		const bool unhooked = watcher.stop();

		int failures = 0;
		const auto expect = [&failures](bool ok, const char* what) {
			if (!ok)
			{
				std::printf("error: %s\n", what);
				++failures;
			}
		};
		expect(got == 0, "GetMessageW failed");
		expect(!timed_out, "the watchdog timer fired: the loop did not end on its own");
		expect(got != 0 || msg.wParam == 0, "WM_QUIT carried a failure code");
		expect(window.handled_create(), "main_window never saw WM_CREATE");
		expect(window.handled_destroy(), "main_window never saw WM_DESTROY");
		expect(timer.ticks() == 3, "the timer did not tick exactly 3 times");
		expect(!timer.wrong_arguments(), "the timer procedure received the wrong message or timer id");
		expect(unhooked, "UnhookWinEvent failed");
		std::printf("WinEvents for the window: %d created, %d renamed\n", watcher.created(), watcher.renamed());
		expect(watcher.created() >= 1, "no EVENT_OBJECT_CREATE for the window");
		expect(watcher.renamed() >= 1, "no EVENT_OBJECT_NAMECHANGE for the window");
		if (failures != 0)
			return 1;
		std::puts("all callbacks worked");
		return 0;
	}
	catch (const member_thunk::exception& e)
	{
		std::printf("member_thunk failed: %s\n", e.what());
		return 1;
	}
}
