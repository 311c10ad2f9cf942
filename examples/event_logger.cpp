// Binding objects to a C event API that has no user-data parameter.
//
// Many older C libraries (Win32's SetWinEventHook is the classic) call back with a handle they made themselves and
// nothing you chose. With one listener a global variable does the job; with several, each object needs its own
// function pointer. A thunk is such a pointer: it swaps the handle argument for the object and calls the member.
//
// Shown here: the compile-time member form make_thunk<Callback, &Class::member>(object), the default heap, and
// the page_executable error.

#include <member_thunk/member_thunk.hpp>

#include <cstdio>
#include <string>
#include <utility>

// --- A stand-in for the legacy C library ----------------------------------------------------------------------
// It keeps a fixed table of listeners and passes each one its own hook handle: the only thing it can tell them.
extern "C"
{
	typedef void (*event_proc)(void* hook, int event, long value);

	struct legacy_hook
	{
		event_proc proc;
	};

	static legacy_hook legacy_hooks[4];
	static int legacy_hook_count = 0;

	static void* legacy_set_hook(event_proc proc)
	{
		if (legacy_hook_count == 4)
			return nullptr;
		legacy_hooks[legacy_hook_count].proc = proc;
		return &legacy_hooks[legacy_hook_count++];
	}

	static void legacy_raise(int event, long value)
	{
		for (int i = 0; i < legacy_hook_count; ++i)
			legacy_hooks[i].proc(&legacy_hooks[i], event, value);
	}
}

// --- The C++ side ------------------------------------------------------------------------------------------------
// Each logger cares about one event. The hook handle is not a parameter of on_event: the object already knows who
// it is, which is the whole point.
class event_logger
{
public:
	event_logger(std::string name, int wanted) : name_(std::move(name)), wanted_(wanted) {}

	void on_event(int event, long value)
	{
		if (event != wanted_)
			return;
		++seen_;
		total_ += value;
		std::printf("event %d value %ld -> logger '%s' saw it (total %ld)\n", event, value, name_.c_str(), total_);
	}

	int seen() const { return seen_; }
	long total() const { return total_; }

private:
	std::string name_;
	int wanted_;
	int seen_ = 0;
	long total_ = 0;
};

int main()
{
	try
	{
		event_logger audit("audit", 3);
		event_logger metrics("metrics", 7);

		// The page must outlive every call the library may make through its thunks (this library never unhooks;
		// a real program would remove its hooks before the page goes).
		member_thunk::page page = member_thunk::allocate_page();
		const event_proc audit_proc = page.make_thunk<event_proc, &event_logger::on_event>(&audit);
		const event_proc metrics_proc = page.make_thunk<event_proc, &event_logger::on_event>(&metrics);
		page.mark_executable(); // from here on the thunks may run, and the page can no longer change

		if (legacy_set_hook(audit_proc) == nullptr || legacy_set_hook(metrics_proc) == nullptr)
			return 1;

		legacy_raise(3, 42);
		legacy_raise(7, 1000);
		legacy_raise(3, 8);
		legacy_raise(5, -1); // nobody listens to this one

		// A sealed page never becomes writable again (W^X), so a late listener needs a page of its own.
		event_logger late("late", 5);
		try
		{
			static_cast<void>(page.make_thunk<event_proc, &event_logger::on_event>(&late));
			std::puts("error: a sealed page accepted a new thunk");
			return 1;
		}
		catch (const member_thunk::page_executable& e)
		{
			std::printf("as expected: %s\n", e.what());
		}

		if (audit.seen() != 2 || audit.total() != 50 || metrics.seen() != 1 || metrics.total() != 1000)
		{
			std::puts("error: the loggers did not see the events they should have");
			return 1;
		}
		std::puts("event_logger: OK");
		return 0;
	}
	catch (const member_thunk::exception& e) // for instance os_error, if the OS refused executable memory
	{
		std::printf("member_thunk failed: %s\n", e.what());
		return 1;
	}
}
