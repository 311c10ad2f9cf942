// Instantiates every template of the library once, so that static analysis (scripts/lint) sees all of their code
// without the weight of the test framework. Also built with the tests, so it always compiles.
#include <member_thunk/detail/thread_heap.hpp>
#include <member_thunk/member_thunk.hpp>

#include "support/failing_os.hpp"

#include <mutex>

namespace
{
	struct widget
	{
		long value = 1;
		long get(long x) { return value + x; }
		long get_const(long x) const noexcept { return value * x; }
		virtual ~widget() = default;
		widget() = default;
		widget(const widget&) = default;
		widget& operator=(const widget&) = default;
		widget(widget&&) = default;
		widget& operator=(widget&&) = default;
	};

	using callback = long (*)(void*, long);

	template<class Heap>
	long exercise(Heap& heap)
	{
		widget w;
		const widget& cw = w;
		long offset = 3;
		auto lambda = [&offset](long x) { return x + offset; };
		member_thunk::page p = heap.allocate_page();
		const auto a = p.template make_thunk<callback, &widget::get>(&w);
		const auto b = p.template make_thunk<callback>(&w, &widget::get);
		const auto c = p.template make_thunk<long (*)(const void*, long) noexcept, &widget::get_const>(&cw);
		const auto d = p.template make_thunk<callback>(lambda);
		p.mark_executable();
		const long result = a(nullptr, 1) + b(nullptr, 1) + c(nullptr, 1) + d(nullptr, 1);
		heap.compact();
		return heap.is_valid() ? result + static_cast<long>(heap.statistics().live_pages) : -1;
	}
} // namespace

long member_thunk_lint_instantiate()
{
	member_thunk::heap<member_thunk::null_lock> unlocked;
	member_thunk::heap<member_thunk::slim_lock> slim;
	member_thunk::heap<std::mutex> mutex;
	member_thunk::heap<member_thunk::null_lock, test::failing_os> failing;
	member_thunk::detail::thread_heap<member_thunk::detail::os::native> per_thread;
	return exercise(unlocked) + exercise(slim) + exercise(mutex) + exercise(failing) + exercise(per_thread) +
	       exercise(member_thunk::detail::default_heap());
}
