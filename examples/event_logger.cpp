// Binding objects to a C event API that has no user-data parameter.
//
// Many older C libraries (Win32's SetWinEventHook is the classic) call back with a handle they made themselves and
// nothing you chose. With one listener a global variable does the job; with several, each object needs its own
// function pointer. A thunk is such a pointer: it swaps the handle argument for the object and calls the member.
//
// Shown here: the library's main entry point, make_unique_thunk<Callback, &Class::member>(object), for the common
// case of one callback per object. Each listener owns its unique_thunk, registers the thunk's address with the C
// library when it is made and unregisters it before it goes. No page and no mark_executable(): a unique thunk comes
// from the default heap and may be called as soon as it exists. (Pages, for many thunks sealed at once, are in
// tree_walk.cpp and window_proc.cpp.)

#include <member_thunk/member_thunk.hpp>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>

// --- A stand-in for the legacy C library ----------------------------------------------------------------------
// It keeps a fixed table of hooks and passes each one its own hook handle: the only thing it can tell them.
extern "C"
{
	typedef void (*event_proc)(void* hook, int event, long value);

	struct legacy_hook
	{
		event_proc proc; // null: the entry is free
	};

	static legacy_hook legacy_hooks[4];

	// Returns the new hook's handle, or null when the table is full.
	static void* legacy_set_hook(event_proc proc)
	{
		for (legacy_hook& hook : legacy_hooks)
			if (hook.proc == nullptr)
			{
				hook.proc = proc;
				return &hook;
			}
		return nullptr;
	}

	// After this returns the library never calls the hook's procedure again.
	static void legacy_remove_hook(void* handle)
	{
		static_cast<legacy_hook*>(handle)->proc = nullptr;
	}

	// Calls every hook in table order; returns how many were called.
	static int legacy_raise(int event, long value)
	{
		int called = 0;
		for (legacy_hook& hook : legacy_hooks)
			if (hook.proc != nullptr)
			{
				hook.proc(&hook, event, value);
				++called;
			}
		return called;
	}
}

// --- The C++ side ------------------------------------------------------------------------------------------------
// Each listener cares about one event. The hook handle is not a parameter of on_event: the thunk drops it, and the
// object keeps its handle itself for when it unhooks.
class listener
{
public:
	listener(std::string name, int wanted) :
	    name_(std::move(name)), wanted_(wanted),
	    // The thunk holds `this`, so it is made here, by the object, and never shared with another object.
	    proc_(member_thunk::make_unique_thunk<event_proc, &listener::on_event>(this)),
	    // Registered last: from here on the library may call on_event, so everything it reads is already set.
	    hook_(legacy_set_hook(proc_.get()))
	{
		if (hook_ == nullptr)
			throw std::runtime_error("the C library has no free hook left"); // proc_ is destroyed on the way out
	}

	// The thunk is bound to this object's address, so a listener is neither copied nor moved: the events would keep
	// going to the address where it was made.
	listener(const listener&) = delete;
	listener& operator=(const listener&) = delete;
	listener(listener&&) = delete;
	listener& operator=(listener&&) = delete;

	// Unhook first, then let proc_ go (members are destroyed after this body runs). In the other order the library
	// could still call the address of a revoked thunk, which traps.
	~listener() { unhook(); }

	// Stops listening before the object goes; idempotent.
	void unhook() noexcept
	{
		if (hook_ == nullptr)
			return;
		legacy_remove_hook(hook_);
		hook_ = nullptr;
		proc_.reset(); // nothing can call it any more: give its slot back now rather than at destruction
	}

	[[nodiscard]] bool hooked() const noexcept { return static_cast<bool>(proc_); }
	[[nodiscard]] int seen() const noexcept { return seen_; }
	[[nodiscard]] long total() const noexcept { return total_; }

private:
	void on_event(int event, long value)
	{
		if (event != wanted_)
			return;
		++seen_;
		total_ += value;
		std::printf("event %d value %ld -> listener '%s' saw it (total %ld)\n", event, value, name_.c_str(), total_);
	}

	// Declaration order is construction order: the state on_event reads, then the thunk, then the hook.
	std::string name_;
	int wanted_;
	int seen_ = 0;
	long total_ = 0;
	member_thunk::unique_thunk<event_proc> proc_;
	void* hook_;
};

int main()
{
	try
	{
		int failures = 0;
		const auto check = [&failures](bool ok, const char* what) {
			if (!ok)
			{
				std::printf("error: %s\n", what);
				++failures;
			}
		};

		listener audit("audit", 3);
		{
			listener metrics("metrics", 7);
			check(audit.hooked() && metrics.hooked(), "a listener was made without its thunk");

			check(legacy_raise(3, 42) == 2, "the library did not call both hooks");
			legacy_raise(7, 1000);
			legacy_raise(3, 8);
			legacy_raise(5, -1); // nobody listens to this one
			check(audit.seen() == 2 && audit.total() == 50, "audit did not see its events");
			check(metrics.seen() == 1 && metrics.total() == 1000, "metrics did not see its event");
		} // metrics unhooks, then its thunk is revoked

		// Only audit is left in the table: had metrics not unhooked, this call would go through a revoked thunk.
		check(legacy_raise(7, 5) == 1 && legacy_raise(3, 100) == 1, "a destroyed listener is still hooked");
		check(audit.seen() == 3 && audit.total() == 150, "audit missed an event after metrics went");

		// Unhooking early empties the thunk; the object lives on but hears nothing more.
		audit.unhook();
		check(!audit.hooked(), "the thunk was not released by unhook()");
		check(legacy_raise(3, 1) == 0 && audit.total() == 150, "an unhooked listener still heard an event");

		// The freed table entries can be taken again, by a listener with a thunk of its own.
		listener late("late", 5);
		legacy_raise(5, 11);
		check(late.seen() == 1 && late.total() == 11, "a listener made later did not see its event");

		if (failures != 0)
			return 1;
		std::puts("event_logger: OK");
		return 0;
	}
	catch (const std::exception& e) // os_error if the OS refused executable memory, or the table was full
	{
		std::printf("event_logger failed: %s\n", e.what());
		return 1;
	}
}
