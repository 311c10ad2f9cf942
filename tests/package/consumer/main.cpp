// Makes real thunks on the default heap, seals the page and calls them: exits 0 only if every result is right.
#include <member_thunk/member_thunk.hpp>

#include <cstdio>

#ifdef MEMBER_THUNK_CONSUMER_EXPECT_VERSION
static_assert(MEMBER_THUNK_VERSION_MAJOR == MEMBER_THUNK_CONSUMER_MAJOR &&
                  MEMBER_THUNK_VERSION_MINOR == MEMBER_THUNK_CONSUMER_MINOR &&
                  MEMBER_THUNK_VERSION_PATCH == MEMBER_THUNK_CONSUMER_PATCH,
              "the installed version.hpp and the package's version file disagree");
#endif

namespace
{
	struct accumulator
	{
		long total = 40;

		long add(long x) { return total += x; }
	};

	// A C-style callback with no user-data parameter: the first argument is a context the thunk replaces.
	using add_callback = long (*)(void* context, long x);
} // namespace

int main()
{
	try
	{
		accumulator acc;
		long calls = 0;
		auto count = [&calls](long x) { return calls += x; };

		member_thunk::page page = member_thunk::allocate_page();
		const add_callback add = page.make_thunk<add_callback, &accumulator::add>(&acc);
		const add_callback add_runtime = page.make_thunk<add_callback>(&acc, &accumulator::add);
		const add_callback counter = page.make_thunk<add_callback>(count);
		page.mark_executable();

		const bool ok = add(nullptr, 2) == 42 && add_runtime(nullptr, 8) == 50 && acc.total == 50 &&
		                counter(nullptr, 1) == 1 && counter(nullptr, 1) == 2 && page.size() == 3;
		std::printf("member_thunk %d.%d.%d consumer: %s\n", MEMBER_THUNK_VERSION_MAJOR, MEMBER_THUNK_VERSION_MINOR,
		            MEMBER_THUNK_VERSION_PATCH, ok ? "ok" : "WRONG RESULT");
		return ok ? 0 : 1;
	}
	catch (const member_thunk::exception& e)
	{
		std::printf("member_thunk consumer: %s\n", e.what());
		return 1;
	}
}
