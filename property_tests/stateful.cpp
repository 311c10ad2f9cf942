// Stateful property: random sequences of operations on pages (allocate, make thunks and closures of every form and
// signature of the family, seal, call, destroy, move, move-assign, compact) and on unique thunks and unique closures
// (make in each of the three forms, call, move, move-assign, reset, destroy) run against a real heap and a model of
// what is alive. After every command:
// the heap's invariants hold, its statistics agree with the model, no mapping of the process is writable and
// executable, every page's observers, layout and protection agree with the model (read-write before sealing; then
// read-execute for run-time code, read-only for the data of prebuilt stubs), every live unique thunk is where it was
// made, a destroyed page is revoked at once and a destroyed unique thunk's data slot points at the trap, and a new
// unique thunk never takes the slot of one of the last MEMBER_THUNK_UNIQUE_QUARANTINE destroyed.
//
// One source, one executable per heap (see CMakeLists.txt):
//   PROPERTY_USER_HEAP undefined  the default heap, in the MEMBER_THUNK_DEFAULT_HEAP_SAFETY mode it was built with
//   PROPERTY_USER_HEAP=1          a member_thunk::heap<std::mutex>
//   PROPERTY_USER_HEAP=2          a member_thunk::heap<member_thunk::slim_lock>
//   PROPERTY_PAGE_SIZE=N          (with a user heap) an OS back end with pages of N bytes: with prebuilt stubs, pages
//   of
//                                 several 4 KiB chunks, whose headers a run-time member's block may have to skip
// each built as is (pages of run-time code) and with MEMBER_THUNK_NO_RUNTIME_CODE (pages of prebuilt stubs).
#include <member_thunk/member_thunk.hpp>

#include "checks.hpp"
#include "family.hpp"
#include "model.hpp"
#include "unique.hpp"

#include "support/maps.hpp"

#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>
#include <rapidcheck/state.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace
{
	using native_os = member_thunk::detail::os::native;

#if defined(PROPERTY_PAGE_SIZE)
	/// The native back end, with pages of PROPERTY_PAGE_SIZE bytes (a multiple of the system's): its reservations are
	/// aligned to them, as a system's are to its own pages.
	struct heap_os : native_os
	{
		static constexpr std::size_t large_page = PROPERTY_PAGE_SIZE;

		[[nodiscard]] static std::size_t page_size() noexcept { return large_page; }

		static member_thunk::detail::os::result reserve(std::size_t size, void* preferred, void*& out) noexcept
		{
			void* base = nullptr;
			if (auto status = native_os::reserve(size + large_page, preferred, base); !status.ok())
				return status;
			auto* const first = static_cast<std::byte*>(base);
			const auto misalignment = reinterpret_cast<std::uintptr_t>(first) % large_page;
			std::byte* const aligned = first + (misalignment == 0 ? 0 : large_page - misalignment);
			// Give back the ends (the OS takes back any part of a reservation).
			if (aligned != first)
				static_cast<void>(native_os::unreserve(first, static_cast<std::size_t>(aligned - first)));
			if (aligned + size != first + size + large_page)
				static_cast<void>(native_os::unreserve(
				    aligned + size, static_cast<std::size_t>(first + size + large_page - (aligned + size))));
			out = aligned;
			return member_thunk::detail::os::result::success();
		}
	};
	static_assert(member_thunk::detail::os::backend<heap_os>);
#else
	using heap_os = native_os;
#endif

#if defined(PROPERTY_USER_HEAP)
#if PROPERTY_USER_HEAP == 1
	using heap_lock = std::mutex;
	constexpr const char* heap_name = "heap<std::mutex>";
#else
	using heap_lock = member_thunk::slim_lock;
	constexpr const char* heap_name = "heap<slim_lock>";
#endif
	/// Whether freed unique-thunk slots wait in a cache of the thread (which compact() does not empty).
	constexpr bool thread_slot_cache = false;
	/// Whether the heap outlives the test case (and keeps what earlier cases left in quarantine).
	constexpr bool default_heap = false;

	/// A user heap, created for each test case.
	class heap_access
	{
	public:
		[[nodiscard]] member_thunk::page allocate_page() { return heap_.allocate_page(); }
		[[nodiscard]] prop::any_unique make_unique(std::size_t signature, prop::form how, long id,
		                                           prop::object_store& objects)
		{
			return prop::make_unique(heap_, signature, how, id, objects);
		}
		void compact() { heap_.compact(); }
		[[nodiscard]] prop::failure first_violation() const { return prop::violation(heap_.first_violation()); }
		[[nodiscard]] member_thunk::heap_statistics statistics() const { return heap_.statistics(); }

	private:
		member_thunk::heap<heap_lock, heap_os> heap_;
	};
#else
#if MEMBER_THUNK_DEFAULT_HEAP_SAFETY == 3
	constexpr const char* heap_name = "default heap, safety 3";
#elif MEMBER_THUNK_DEFAULT_HEAP_SAFETY == 2
	constexpr const char* heap_name = "default heap, safety 2";
#else
	constexpr const char* heap_name = "default heap, safety 1";
#endif
	constexpr bool thread_slot_cache = MEMBER_THUNK_DEFAULT_HEAP_SAFETY == 3;
	constexpr bool default_heap = true;

	/// The default heap, through the public free functions (shared by every test case).
	class heap_access
	{
	public:
		[[nodiscard]] member_thunk::page allocate_page() { return member_thunk::allocate_page(); }
		[[nodiscard]] prop::any_unique make_unique(std::size_t signature, prop::form how, long id,
		                                           prop::object_store& objects)
		{
			prop::default_heap_functions heap;
			return prop::make_unique(heap, signature, how, id, objects);
		}
		void compact() { member_thunk::compact(); }
		[[nodiscard]] prop::failure first_violation() const
		{
			return prop::violation(member_thunk::detail::default_heap().first_violation());
		}
		[[nodiscard]] member_thunk::heap_statistics statistics() const
		{
			return member_thunk::detail::default_heap().statistics();
		}
	};
#endif

	constexpr std::size_t max_pages = 40; // more than two regions' worth
	constexpr std::size_t quarantine = MEMBER_THUNK_UNIQUE_QUARANTINE;

	// ---- Model ----------------------------------------------------------------------------------------------------

	using prop::outcome;
	using prop::page_model;
	using prop::thunk_model;

	struct model
	{
		std::vector<page_model> pages;
		std::vector<thunk_model> uniques;
		long next_object = 1;
	};

	void add_thunk(model& m, page_model& p, std::size_t signature, prop::form how, std::size_t code)
	{
		prop::add_thunk(p, signature, how, m.next_object++, code);
	}

	/// What a command that makes thunks or closures on a page saw when it ran: the positions the code of each one it
	/// made took, in order. Only the page knows whether a closure's run-time code takes one slot or two (model.hpp),
	/// so run() records what the page reported and the apply() that follows takes the model from there. Before the
	/// command has run (RapidCheck applies commands to generate and to shrink sequences), apply() assumes the most
	/// (two slots for every closure of run-time code, which makes a closure at the boundary page_full): that model
	/// serves only to generate commands, which never depend on how many thunks a page holds (call_thunk takes its
	/// index modulo). An observation counts only for the page state it was made on, and apply() takes it.
	class observed_code
	{
	public:
		/// run() starts on page state `before`.
		void start(const page_model& before)
		{
			seen_ = before;
			code_.clear();
		}

		/// run() made one more, whose code took `code` positions.
		void made(std::size_t code) { code_.push_back(code); }

		/// What run() saw, if it ran on page state `p` (forgotten once taken).
		[[nodiscard]] std::optional<std::vector<std::size_t>> take(const page_model& p)
		{
			std::optional<std::vector<std::size_t>> result;
			if (seen_ && *seen_ == p)
				result = std::move(code_);
			seen_.reset();
			code_.clear();
			return result;
		}

	private:
		std::optional<page_model> seen_;
		std::vector<std::size_t> code_;
	};

	/// The model's assumption where nothing was observed: made only where it fits in any case, with the most
	/// positions its code may take.
	[[nodiscard]] std::optional<std::size_t> assumed_code(const page_model& p, std::size_t signature, prop::form how)
	{
		if (prop::predict(p, signature, how) != outcome::made)
			return std::nullopt;
		return prop::code_of(p.kind, signature).most;
	}

	// ---- System under test ----------------------------------------------------------------------------------------

	struct live_page
	{
		member_thunk::page page;
		std::vector<std::uintptr_t> thunks; // entry addresses, in the order the model lists them
	};

	struct live_unique
	{
		prop::any_unique thunk;
		std::uintptr_t address = 0; // its entry, as made
		std::byte* slot = nullptr;  // its data slot, as made
	};

	// Members are destroyed in reverse order: unique thunks and pages first, then the objects they point to, then the
	// heap.
	struct system_under_test
	{
		heap_access heap;
		prop::object_store objects;
		std::vector<live_page> pages;
		std::vector<live_unique> uniques;
		std::deque<const std::byte*> freed_slots; // of the last `quarantine` unique thunks destroyed, newest last
	};

	// ---- Checks ---------------------------------------------------------------------------------------------------

	void require(const prop::failure& f)
	{
		if (f)
			RC_FAIL(*f);
	}

	/// What must hold after every command.
	void verify(const model& m, system_under_test& sut)
	{
		require(sut.heap.first_violation());
		const auto maps = test::read_maps();
		require(prop::check_wx(maps));

		RC_ASSERT(sut.pages.size() == m.pages.size());
		RC_ASSERT(sut.uniques.size() == m.uniques.size());
		const auto stats = sut.heap.statistics();
		require(prop::check_counts(stats, m.pages.size(), m.uniques.size()));
		require(prop::check_memory<heap_os>(stats));
		RC_ASSERT(stats.runtime_code == (prop::build_kind == prop::page_kind::runtime_code));
		if (prop::build_kind == prop::page_kind::prebuilt)
			RC_ASSERT(stats.prebuilt_regions == stats.regions);

		std::set<const std::byte*> page_addresses;
		for (std::size_t i = 0; i < m.pages.size(); ++i)
		{
			const live_page& actual = sut.pages[i];
			require(prop::check_page(maps, actual.page, m.pages[i], actual.thunks));
			RC_ASSERT(page_addresses.insert(member_thunk::detail::page_access::address_of(actual.page)).second);
		}
		std::set<const std::byte*> slots;
		for (const auto& u : sut.uniques)
		{
			require(prop::check_unique(maps, u.thunk, u.address, u.slot));
			RC_ASSERT(slots.insert(u.slot).second);
		}
	}

	/// A page freed just now is revoked (decommitted, or cached and all traps): a stale call faults instead of running.
	void require_revoked(prop::page_kind kind, const std::byte* page)
	{
		require(prop::check_revoked(test::read_maps(), kind, page));
	}

	/// A unique thunk destroyed just now: its slot points at the trap, and it waits in quarantine.
	void require_revoked_slot(system_under_test& sut, const std::byte* slot)
	{
		require(prop::check_revoked_slot(test::read_maps(), slot));
		sut.freed_slots.push_back(slot);
		if (sut.freed_slots.size() > quarantine)
			sut.freed_slots.pop_front();
	}

	template<class T>
	void erase_at(std::vector<T>& items, std::size_t i)
	{
		items.erase(items.begin() + static_cast<std::ptrdiff_t>(i));
	}

	/// The model of a move to a new handle at the end of the list.
	template<class T>
	void move_to_end(std::vector<T>& items, std::size_t i)
	{
		T moved = std::move(items[i]);
		erase_at(items, i);
		items.push_back(std::move(moved));
	}

	/// The model of a move assignment of handle `from` over handle `to` (a self-move changes nothing).
	template<class T>
	void assign_over(std::vector<T>& items, std::size_t from, std::size_t to)
	{
		if (from == to)
			return;
		items[to] = std::move(items[from]);
		erase_at(items, from);
	}

	[[nodiscard]] std::size_t pick(std::size_t count)
	{
		RC_PRE(count > 0);
		return *rc::gen::inRange<std::size_t>(0, count);
	}

	// ---- Commands on pages ----------------------------------------------------------------------------------------

	// Every command's run() is followed by verify() of the state it leads to (see the property below).
	using command = rc::state::Command<model, system_under_test>;

	struct allocate_page final : command
	{
		void checkPreconditions(const model& s0) const override { RC_PRE(s0.pages.size() < max_pages); }
		void apply(model& s0) const override { s0.pages.emplace_back(); }
		void run(const model&, system_under_test& sut) const override
		{
			sut.pages.push_back({sut.heap.allocate_page(), {}});
		}
		void show(std::ostream& os) const override { os << "allocate_page"; }
	};

	/// Allocates several pages at once, so that sequences reach more than one region.
	struct allocate_pages final : command
	{
		explicit allocate_pages(const model& s0) :
		    count(*rc::gen::inRange<std::size_t>(1, std::max<std::size_t>(2, max_pages - s0.pages.size() + 1)))
		{
		}

		void checkPreconditions(const model& s0) const override { RC_PRE(s0.pages.size() + count <= max_pages); }
		void apply(model& s0) const override { s0.pages.resize(s0.pages.size() + count); }
		void run(const model&, system_under_test& sut) const override
		{
			for (std::size_t i = 0; i < count; ++i)
				sut.pages.push_back({sut.heap.allocate_page(), {}});
		}
		void show(std::ostream& os) const override { os << "allocate_pages(" << count << ")"; }

		std::size_t count;
	};

	/// Makes one thunk or closure on any page; the model says whether it fits, or the page is sealed.
	struct make_thunk final : command
	{
		explicit make_thunk(const model& s0) :
		    page(pick(s0.pages.size())), signature(*prop::signature_gen()), how(*prop::form_gen())
		{
		}

		void checkPreconditions(const model& s0) const override { RC_PRE(page < s0.pages.size()); }

		void apply(model& s0) const override
		{
			page_model& p = s0.pages[page];
			if (const auto seen = observed.take(p))
			{
				for (const std::size_t code : *seen)
					add_thunk(s0, p, signature, how, code);
			}
			else if (const auto code = assumed_code(p, signature, how))
				add_thunk(s0, p, signature, how, *code);
		}

		void run(const model& s0, system_under_test& sut) const override
		{
			page_model expected = s0.pages[page];
			live_page& p = sut.pages[page];
			observed.start(expected);
			const prop::attempt done =
			    prop::make_on_page(p.page, expected, signature, how, s0.next_object, sut.objects);
			require(done.problem);
			if (done.address)
			{
				p.thunks.push_back(*done.address);
				observed.made(done.code);
			}
		}

		void show(std::ostream& os) const override
		{
			os << (prop::is_closure(signature) ? "make_closure" : "make_thunk") << "(page " << page << ", "
			   << prop::signature_names.at(signature) << ", " << prop::name(how) << ")";
		}

		std::size_t page;
		std::size_t signature;
		prop::form how;
		mutable observed_code observed;
	};

	/// Makes thunks and closures from a repeating pattern of signatures and forms until the next one does not fit,
	/// which must throw page_full (or the first page_executable on a sealed page).
	struct fill_page final : command
	{
		explicit fill_page(const model& s0) :
		    page(pick(s0.pages.size())),
		    pattern(*rc::gen::nonEmpty(rc::gen::container<std::vector<std::pair<std::size_t, prop::form>>>(
		        rc::gen::pair(prop::signature_gen(), prop::form_gen()))))
		{
		}

		void checkPreconditions(const model& s0) const override { RC_PRE(page < s0.pages.size()); }

		void apply(model& s0) const override
		{
			page_model& p = s0.pages[page];
			if (const auto seen = observed.take(p))
			{
				for (std::size_t k = 0; k < seen->size(); ++k)
					add_thunk(s0, p, pattern[k % pattern.size()].first, pattern[k % pattern.size()].second, (*seen)[k]);
				return;
			}
			for (std::size_t k = 0;; ++k)
			{
				const auto [signature, how] = pattern[k % pattern.size()];
				const auto code = assumed_code(p, signature, how);
				if (!code)
					break;
				add_thunk(s0, p, signature, how, *code);
			}
		}

		void run(const model& s0, system_under_test& sut) const override
		{
			model m = s0;
			page_model& expected = m.pages[page];
			live_page& p = sut.pages[page];
			observed.start(expected);
			for (std::size_t k = 0;; ++k)
			{
				const auto [signature, how] = pattern[k % pattern.size()];
				const prop::attempt done =
				    prop::make_on_page(p.page, expected, signature, how, m.next_object, sut.objects);
				require(done.problem);
				if (!done.address)
					break; // page_full or page_executable, where the model allows it
				++m.next_object;
				p.thunks.push_back(*done.address);
				observed.made(done.code);
			}
		}

		void show(std::ostream& os) const override
		{
			os << "fill_page(page " << page << ", pattern";
			for (const auto& [signature, how] : pattern)
			{
				os << " {";
				prop::show_signature(signature, os);
				os << ", " << prop::name(how) << "}";
			}
			os << ")";
		}

		std::size_t page;
		std::vector<std::pair<std::size_t, prop::form>> pattern;
		mutable observed_code observed;
	};

	struct mark_executable final : command
	{
		explicit mark_executable(const model& s0) : page(pick(s0.pages.size())), twice(*rc::gen::arbitrary<bool>()) {}

		void checkPreconditions(const model& s0) const override { RC_PRE(page < s0.pages.size()); }
		void apply(model& s0) const override { s0.pages[page].executable = true; }

		void run(const model&, system_under_test& sut) const override
		{
			sut.pages[page].page.mark_executable();
			if (twice) // a no-op on a sealed page
				sut.pages[page].page.mark_executable();
		}

		void show(std::ostream& os) const override
		{
			os << "mark_executable(page " << page << (twice ? ", twice)" : ")");
		}

		std::size_t page;
		bool twice;
	};

	void check_call(const thunk_model& t, std::uintptr_t address, const prop::argument_values& args)
	{
		require(prop::call_failure(t, address, args));
	}

	/// Calls one thunk or closure of a sealed page: the `thunk`-th modulo how many the page holds when the command
	/// runs (which the model knows only then: observed_code).
	struct call_thunk final : command
	{
		explicit call_thunk(const model& s0) : args(*prop::arguments_gen())
		{
			std::vector<std::pair<std::size_t, std::size_t>> callable;
			for (std::size_t p = 0; p < s0.pages.size(); ++p)
				if (s0.pages[p].executable)
					for (std::size_t t = 0; t < s0.pages[p].thunks.size(); ++t)
						callable.emplace_back(p, t);
			std::tie(page, thunk) = callable[pick(callable.size())];
		}

		void checkPreconditions(const model& s0) const override
		{
			RC_PRE(page < s0.pages.size());
			RC_PRE(s0.pages[page].executable);
		}

		void run(const model& s0, system_under_test& sut) const override
		{
			const auto& thunks = s0.pages[page].thunks;
			if (!thunks.empty())
				check_call(thunks[thunk % thunks.size()], sut.pages[page].thunks[thunk % thunks.size()], args);
		}

		void show(std::ostream& os) const override
		{
			os << "call_thunk(page " << page << ", thunk " << thunk << ", args ";
			prop::show_arguments(args, os);
			os << ")";
		}

		std::size_t page = 0;
		std::size_t thunk = 0;
		prop::argument_values args;
	};

	/// Calls every thunk of every sealed page, and every unique thunk.
	struct call_all final : command
	{
		call_all() : args(*prop::arguments_gen()) {}

		void run(const model& s0, system_under_test& sut) const override
		{
			for (std::size_t p = 0; p < s0.pages.size(); ++p)
				if (s0.pages[p].executable)
					for (std::size_t t = 0; t < s0.pages[p].thunks.size(); ++t)
						check_call(s0.pages[p].thunks[t], sut.pages[p].thunks[t], args);
			for (std::size_t u = 0; u < s0.uniques.size(); ++u)
				check_call(s0.uniques[u], sut.uniques[u].address, args);
		}

		void show(std::ostream& os) const override
		{
			os << "call_all(args ";
			prop::show_arguments(args, os);
			os << ")";
		}

		prop::argument_values args;
	};

	/// Destroys a page (its destructor, not an assignment) and checks it is revoked at once.
	struct destroy_page final : command
	{
		explicit destroy_page(const model& s0) : page(pick(s0.pages.size())) {}

		void checkPreconditions(const model& s0) const override { RC_PRE(page < s0.pages.size()); }
		void apply(model& s0) const override { erase_at(s0.pages, page); }

		void run(const model& s0, system_under_test& sut) const override
		{
			const std::byte* const address = member_thunk::detail::page_access::address_of(sut.pages[page].page);
			{
				const live_page doomed = std::move(sut.pages[page]);
				erase_at(sut.pages, page);
			}
			require_revoked(s0.pages[page].kind, address);
		}

		void show(std::ostream& os) const override { os << "destroy_page(page " << page << ")"; }

		std::size_t page;
	};

	/// Move-constructs a page into a new handle at the end of the list; the moved-from handle is discarded.
	struct move_page final : command
	{
		explicit move_page(const model& s0) : page(pick(s0.pages.size())) {}

		void checkPreconditions(const model& s0) const override { RC_PRE(page < s0.pages.size()); }
		void apply(model& s0) const override { move_to_end(s0.pages, page); }

		void run(const model&, system_under_test& sut) const override
		{
			live_page moved{member_thunk::page(std::move(sut.pages[page].page)), std::move(sut.pages[page].thunks)};
			erase_at(sut.pages, page);
			sut.pages.push_back(std::move(moved));
		}

		void show(std::ostream& os) const override { os << "move_page(page " << page << " to the end)"; }

		std::size_t page;
	};

	/// A move assignment of one handle of a list of the model (&model::pages, &model::uniques) over another, or over
	/// itself.
	template<auto List>
	struct move_assign_command : command
	{
		explicit move_assign_command(const model& s0) : from(pick((s0.*List).size())), to(pick((s0.*List).size())) {}

		void checkPreconditions(const model& s0) const override
		{
			RC_PRE(from < (s0.*List).size());
			RC_PRE(to < (s0.*List).size());
		}

		void apply(model& s0) const override { assign_over(s0.*List, from, to); }

		std::size_t from;
		std::size_t to;
	};

	/// Move-assigns one page handle over another (which revokes the page it held); `from == to` is a self-move.
	struct move_assign_page final : move_assign_command<&model::pages>
	{
		using move_assign_command::move_assign_command;

		void run(const model& s0, system_under_test& sut) const override
		{
			if (from == to)
			{
				member_thunk::page& p = sut.pages[from].page;
				member_thunk::page& same = p;
				p = std::move(same);
				return;
			}
			const std::byte* const revoked = member_thunk::detail::page_access::address_of(sut.pages[to].page);
			sut.pages[to].page = std::move(sut.pages[from].page);
			sut.pages[to].thunks = std::move(sut.pages[from].thunks);
			erase_at(sut.pages, from);
			require_revoked(s0.pages[to].kind, revoked);
		}

		void show(std::ostream& os) const override { os << "move_assign_page(page " << from << " over " << to << ")"; }
	};

	struct compact final : command
	{
		void run(const model& s0, system_under_test& sut) const override
		{
			sut.heap.compact();
			// Only regions with a live page or a slab page remain, and only the live pages and the slab keep memory.
			const auto stats = sut.heap.statistics();
			RC_ASSERT(stats.regions <= s0.pages.size() + stats.slab_pages);
			RC_ASSERT(stats.cached_pages == 0u);
			RC_ASSERT(stats.committed_bytes == (stats.live_pages + stats.slab_pages) * heap_os::page_size());
		}

		void show(std::ostream& os) const override { os << "compact"; }
	};

	// ---- Commands on unique thunks --------------------------------------------------------------------------------

	/// Makes a unique thunk or closure (each form of make_unique_thunk and make_unique_closure, each signature); it is
	/// callable at once.
	struct make_unique final : command
	{
		make_unique() : signature(*prop::signature_gen()), how(*prop::form_gen()) {}

		void apply(model& s0) const override { s0.uniques.push_back({signature, how, s0.next_object++}); }

		void run(const model& s0, system_under_test& sut) const override
		{
			prop::any_unique made = sut.heap.make_unique(signature, how, s0.next_object, sut.objects);
			RC_ASSERT(prop::holds_thunk(made));
			std::byte* const slot = prop::slot_of(made);
			if (std::find(sut.freed_slots.begin(), sut.freed_slots.end(), slot) != sut.freed_slots.end())
				RC_FAIL("a new unique thunk took the slot of one destroyed fewer than " + std::to_string(quarantine) +
				        " unique thunks ago");
			const std::uintptr_t address = prop::address_of(made);
			sut.uniques.push_back({std::move(made), address, slot});
		}

		void show(std::ostream& os) const override
		{
			os << prop::unique_maker_name(signature) << "(" << prop::signature_names.at(signature) << ", "
			   << prop::name(how) << ")";
		}

		std::size_t signature;
		prop::form how;
	};

	struct call_unique final : command
	{
		explicit call_unique(const model& s0) : thunk(pick(s0.uniques.size())), args(*prop::arguments_gen()) {}

		void checkPreconditions(const model& s0) const override { RC_PRE(thunk < s0.uniques.size()); }

		void run(const model& s0, system_under_test& sut) const override
		{
			check_call(s0.uniques[thunk], sut.uniques[thunk].address, args);
		}

		void show(std::ostream& os) const override
		{
			os << "call_unique(" << thunk << ", args ";
			prop::show_arguments(args, os);
			os << ")";
		}

		std::size_t thunk;
		prop::argument_values args;
	};

	/// Destroys a unique thunk (its destructor, or reset() and then the empty handle's destructor).
	struct destroy_unique final : command
	{
		explicit destroy_unique(const model& s0) : thunk(pick(s0.uniques.size())), by_reset(*rc::gen::arbitrary<bool>())
		{
		}

		void checkPreconditions(const model& s0) const override { RC_PRE(thunk < s0.uniques.size()); }
		void apply(model& s0) const override { erase_at(s0.uniques, thunk); }

		void run(const model&, system_under_test& sut) const override
		{
			const auto at = sut.uniques.begin() + static_cast<std::ptrdiff_t>(thunk);
			std::byte* const slot = at->slot;
			if (by_reset)
			{
				prop::reset(at->thunk);
				RC_ASSERT(!prop::holds_thunk(at->thunk));
				RC_ASSERT(prop::address_of(at->thunk) == 0u);
				require_revoked_slot(sut, slot);
				sut.uniques.erase(at); // the empty handle's destructor does nothing
			}
			else
			{
				sut.uniques.erase(at);
				require_revoked_slot(sut, slot);
			}
		}

		void show(std::ostream& os) const override
		{
			os << "destroy_unique(" << thunk << (by_reset ? ", by reset)" : ")");
		}

		std::size_t thunk;
		bool by_reset;
	};

	/// Move-constructs a unique thunk into a new handle at the end of the list; the moved-from handle is empty.
	struct move_unique final : command
	{
		explicit move_unique(const model& s0) : thunk(pick(s0.uniques.size())) {}

		void checkPreconditions(const model& s0) const override { RC_PRE(thunk < s0.uniques.size()); }
		void apply(model& s0) const override { move_to_end(s0.uniques, thunk); }

		void run(const model&, system_under_test& sut) const override
		{
			live_unique& from = sut.uniques[thunk];
			live_unique moved{prop::any_unique(std::move(from.thunk)), from.address, from.slot};
			RC_ASSERT(!prop::holds_thunk(from.thunk));
			erase_at(sut.uniques, thunk);
			sut.uniques.push_back(std::move(moved));
		}

		void show(std::ostream& os) const override { os << "move_unique(" << thunk << " to the end)"; }

		std::size_t thunk;
	};

	/// Move-assigns one unique thunk over another (which destroys the one it held); `from == to` is a self-move. The
	/// same signature assigns the unique_thunk, another one the variant that holds it (destroy, then move).
	struct move_assign_unique final : move_assign_command<&model::uniques>
	{
		using move_assign_command::move_assign_command;

		void run(const model&, system_under_test& sut) const override
		{
			if (from == to)
			{
				prop::any_unique& u = sut.uniques[from].thunk;
				prop::any_unique& same = u;
				prop::move_assign(u, same);
				RC_ASSERT(prop::holds_thunk(u));
				return;
			}
			std::byte* const revoked = sut.uniques[to].slot;
			prop::move_assign(sut.uniques[to].thunk, sut.uniques[from].thunk);
			RC_ASSERT(!prop::holds_thunk(sut.uniques[from].thunk));
			sut.uniques[to].address = sut.uniques[from].address;
			sut.uniques[to].slot = sut.uniques[from].slot;
			erase_at(sut.uniques, from);
			require_revoked_slot(sut, revoked);
		}

		void show(std::ostream& os) const override { os << "move_assign_unique(" << from << " over " << to << ")"; }
	};
} // namespace

TEST_CASE("property: random operations on pages and unique thunks agree with the model", "[property][stateful]")
{
	INFO("heap: " << heap_name << ", pages of " << prop::name(prop::build_kind));
	rc::prop(std::string("stateful, ") + heap_name + ", " + prop::name(prop::build_kind), [] {
		system_under_test sut;
		require(prop::check_counts(sut.heap.statistics(), 0, 0));
		// Weights: a command listed twice is generated twice as often.
		const auto commands = *rc::state::gen::commands(
		    model{},
		    rc::state::gen::execOneOfWithArgs<allocate_page, allocate_pages, make_thunk, make_thunk, make_thunk,
		                                      fill_page, mark_executable, mark_executable, call_thunk, call_thunk,
		                                      call_thunk, call_all, destroy_page, move_page, move_assign_page, compact,
		                                      make_unique, make_unique, call_unique, call_unique, destroy_unique,
		                                      move_unique, move_assign_unique>());
		// What rc::state::check() does (rc::state::runAll), plus verify() after every command.
		model state;
		for (const auto& c : commands)
		{
			c->checkPreconditions(state);
			c->run(state, sut);
			c->apply(state);
			verify(state, sut);
		}
		// Everything gone: nothing is live, and compact() gives back every region but those of slab pages that hold
		// a slot still in quarantine (in the heap's queue, or in a thread's cache of free slots).
		while (!sut.uniques.empty())
		{
			std::byte* const slot = sut.uniques.back().slot;
			sut.uniques.pop_back();
			require_revoked_slot(sut, slot);
		}
		sut.pages.clear();
		require(prop::check_counts(sut.heap.statistics(), 0, 0));
		sut.heap.compact();
		const auto stats = sut.heap.statistics();
		RC_ASSERT(stats.regions <= stats.slab_pages);
		RC_ASSERT(stats.committed_bytes == stats.slab_pages * heap_os::page_size());
		if (!thread_slot_cache && !default_heap)
		{
			// A heap of this case alone: its quarantine holds this case's destroyed unique thunks only.
			std::set<std::uintptr_t> quarantined_pages;
			for (const std::byte* slot : sut.freed_slots)
				quarantined_pages.insert(reinterpret_cast<std::uintptr_t>(slot) / heap_os::page_size());
			RC_ASSERT(stats.slab_pages <= quarantined_pages.size());
		}
		require(sut.heap.first_violation());
		RC_ASSERT(test::writable_executable_mappings().empty());
	});
}
