// Fault-injection property: random sequences of page operations on a heap<null_lock, test::failing_os>, with OS
// failures injected at random points (which call fails, how many calls from now, with which errno).
//
// Required, step by step:
//   - an operation during which an injected failure fired throws member_thunk::os_error carrying the injected errno
//     and naming the injected call ("injected <call>"); an operation during which none fired does not throw;
//   - except in a destructor (destroying or move-assigning over a page): it never throws, and a failed decommit
//     leaves the page read-write and trap-filled, never executable; no revoked page is ever executable again unless
//     a newer live page took its place;
//   - the heap's invariants hold, its statistics agree with the live pages, no mapping is writable and executable,
//     every page has the protection its state says, and every call of a thunk returns what its target computes;
// and at the end, once every page is gone, faults are off and the heap is compacted: every reservation that
// succeeded was released, and the process's mapping count is back to what it was before the heap was created (not
// checked under AddressSanitizer or ThreadSanitizer, whose allocators map memory as they go).
//
// One combination is excluded: a failed decommit whose read-write fallback (a commit) fails too. Nothing safe is
// left then and the process ends on purpose; tests/fault.cpp checks that in a forked child.
#include <member_thunk/member_thunk.hpp>

#include "family.hpp"
#include "support/failing_os.hpp"
#include "support/maps.hpp"
#include "support/revoked.hpp"

#include <catch2/catch.hpp>
#include <rapidcheck/catch.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace
{
	/// test::failing_os, also keeping the list of reservations that succeeded and were not released yet, so that the
	/// leak check can name any left behind.
	struct recording_os : test::failing_os
	{
		static inline std::vector<std::uintptr_t> held;

		static result reserve(std::size_t size, void* preferred, void*& out) noexcept
		{
			const auto status = failing_os::reserve(size, preferred, out);
			if (status.ok())
				held.push_back(reinterpret_cast<std::uintptr_t>(out));
			return status;
		}

		static result unreserve(void* address, std::size_t size) noexcept
		{
			const auto status = failing_os::unreserve(address, size);
			if (status.ok())
				std::erase(held, reinterpret_cast<std::uintptr_t>(address));
			return status;
		}

		static void reset() noexcept { held.clear(); }
	};

	static_assert(member_thunk::detail::os::backend<recording_os>);

	using faulty_heap = member_thunk::heap<member_thunk::null_lock, recording_os>;

	// A sanitizer's allocator (AddressSanitizer's, ThreadSanitizer's) maps memory on its own as the process runs, so
	// the process's mapping count moves for reasons that have nothing to do with the heap: under one, the leak check
	// rests on the heap's own reservations only. (Nor can it look at where they were: the allocator may map memory
	// there once they are gone.)
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	constexpr bool exact_mapping_count = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
	constexpr bool exact_mapping_count = false;
#else
	constexpr bool exact_mapping_count = true;
#endif
#else
	constexpr bool exact_mapping_count = true;
#endif

	using test::os_call;
	using test::os_faults;

	constexpr std::size_t call_kinds = static_cast<std::size_t>(os_call::count);
	constexpr std::size_t max_pages = 40;

	/// The name failing_os gives each call ("injected <name>").
	constexpr std::array<const char*, call_kinds> call_names{
	    "reserve",   "make_writable", "make_executable",  "flush",          "set_call_targets", "decommit",
	    "unreserve", "protect",       "probe_executable", "map_image_code", "map_sealed_copy"};

	enum class kind : std::uint8_t
	{
		allocate,
		make_thunk,
		mark_executable,
		call,
		destroy,
		destroy_all,
		move,
		move_assign,
		compact,
		inject,
		count
	};

	/// One step. Indices are taken modulo what exists when it runs.
	struct op
	{
		kind what = kind::allocate;
		std::size_t a = 0;
		std::size_t b = 0;
		std::size_t signature = 0;
		prop::form how = prop::form::compile_time_member;
		prop::argument_values args{};
		os_call call = os_call::reserve; // inject: which call fails,
		int nth = 1;                     // the how-many-th from now,
		int error = ENOMEM;              // with which errno
	};

	/// An allocation takes one to four pages, so that sequences reach more than one region.
	[[nodiscard]] std::size_t pages_to_allocate(const op& o)
	{
		return 1 + o.b % 4;
	}

	void showValue(const op& o, std::ostream& os)
	{
		switch (o.what)
		{
		case kind::allocate:
			os << "allocate(" << pages_to_allocate(o) << ")";
			break;
		case kind::make_thunk:
			os << "make_thunk(" << o.a << ", " << prop::signature_names.at(o.signature) << ", " << prop::name(o.how)
			   << ")";
			break;
		case kind::mark_executable:
			os << "mark_executable(" << o.a << ")";
			break;
		case kind::call:
			os << "call(" << o.a << ", ";
			prop::show_arguments(o.args, os);
			os << ")";
			break;
		case kind::destroy:
			os << "destroy(" << o.a << ")";
			break;
		case kind::destroy_all:
			os << "destroy_all";
			break;
		case kind::move:
			os << "move(" << o.a << ")";
			break;
		case kind::move_assign:
			os << "move_assign(" << o.a << " over " << o.b << ")";
			break;
		case kind::compact:
			os << "compact";
			break;
		case kind::inject:
			os << "inject(" << call_names.at(static_cast<std::size_t>(o.call)) << " fails at call " << o.nth
			   << " from now, errno " << o.error << ")";
			break;
		case kind::count:
			break;
		}
	}

	[[nodiscard]] rc::Gen<op> op_gen()
	{
		return rc::gen::exec([] {
			op o;
			o.what = *rc::gen::weightedElement<kind>({{3, kind::allocate},
			                                          {5, kind::make_thunk},
			                                          {3, kind::mark_executable},
			                                          {5, kind::call},
			                                          {3, kind::destroy},
			                                          {1, kind::destroy_all},
			                                          {1, kind::move},
			                                          {1, kind::move_assign},
			                                          {3, kind::compact},
			                                          {4, kind::inject}});
			o.a = *rc::gen::inRange<std::size_t>(0, 64);
			o.b = *rc::gen::inRange<std::size_t>(0, 64);
			switch (o.what)
			{
			case kind::make_thunk:
				o.signature = *prop::signature_gen();
				o.how = *prop::form_gen();
				break;
			case kind::call:
				o.args = *prop::arguments_gen();
				break;
			case kind::inject:
				o.call = static_cast<os_call>(*rc::gen::inRange<std::size_t>(0, call_kinds));
				o.nth = *rc::gen::inRange(1, 5);
				o.error = *rc::gen::element(ENOMEM, EACCES, EPERM, EAGAIN, EINVAL, EFAULT);
				break;
			default:
				break;
			}
			return o;
		});
	}

	struct live_page
	{
		member_thunk::page page;
		prop::page_model model;
		std::vector<std::uintptr_t> thunks;
	};

	[[nodiscard]] std::optional<std::uintptr_t> address_of(const live_page& p)
	{
		if (p.thunks.empty())
			return std::nullopt;
		return p.thunks.front();
	}

	/// True when `address` holds trap instructions for a whole slot, as a revoked or never-used slot must.

	[[nodiscard]] bool has(const std::vector<std::size_t>& fired, os_call c)
	{
		return std::find(fired.begin(), fired.end(), static_cast<std::size_t>(c)) != fired.end();
	}

	class runner
	{
	public:
		runner(faulty_heap& heap, prop::object_store& objects) : heap_(heap), objects_(objects) {}

		/// Runs one step and checks everything that must hold after it.
		void step(const op& o)
		{
			if (o.what == kind::destroy_all)
			{
				// One page at a time, newest first, each a step of its own.
				while (!pages_.empty())
				{
					op one;
					one.what = kind::destroy;
					one.a = pages_.size() - 1;
					step(one);
				}
				return;
			}
			if (o.what == kind::inject)
			{
				os_faults::error = o.error;
				os_faults::fail_next(o.call, o.nth);
				return;
			}
			const bool in_destructor = o.what == kind::destroy || o.what == kind::move_assign;
			if (in_destructor && pending(os_call::decommit) == 1 && pending(os_call::make_writable) == 1)
				os_faults::fail_next(os_call::make_writable, 0); // the fatal double fault (see the top of this file)

			const auto before = os_faults::fail_in;
			sealed_after_failure_ = false;
			std::optional<member_thunk::os_error> error;
			std::optional<std::uintptr_t> revoked;
			try
			{
				revoked = apply(o);
			}
			catch (const member_thunk::os_error& e)
			{
				error = e;
			}
			std::vector<std::size_t> fired;
			for (std::size_t k = 0; k < call_kinds; ++k)
				if (before.at(k) > 0 && os_faults::fail_in.at(k) == 0)
					fired.push_back(k);

			if (in_destructor)
			{
				RC_ASSERT(!error); // (it cannot: the destructor is noexcept)
				if (revoked)
				{
					// Kept committed for reuse, read-write and trap-filled, or decommitted; whichever of the two the OS
					// refused, the other is done.
					const auto how = test::revocation_of(reinterpret_cast<const void*>(*revoked));
					RC_ASSERT(how == "decommitted" || how == "cached");
					if (has(fired, os_call::decommit))
						RC_ASSERT(how == "cached");
					if (has(fired, os_call::make_writable))
						RC_ASSERT(how == "decommitted");
				}
			}
			else if (fired.empty())
			{
				if (error)
					RC_FAIL(std::string("os_error without an injected failure: ") + error->what());
			}
			else if (!error && o.what == kind::allocate && fired.size() == 1 && has(fired, os_call::unreserve))
			{
				// Placement gives back a reservation the OS put out of direct reach and tries nearer; if giving it
				// back fails, it keeps that reservation as the region (thunks there use the absolute jump): nothing
				// leaks and nothing needs reporting. verify() below checks the heap all the same.
			}
			else
			{
				if (!error)
					RC_FAIL("an injected failure of " + std::string(call_names.at(fired.front())) +
					        " fired, but nothing was thrown");
				RC_ASSERT(error->code().value() == os_faults::error);
				RC_ASSERT(error->code().category() == std::system_category());
				const std::string what = error->what();
				bool named = false;
				for (const auto k : fired)
					named = named || what.find(std::string("injected ") + call_names.at(k)) != std::string::npos;
				if (!named)
					RC_FAIL("the os_error does not name the injected call: " + what);
				RC_ASSERT(what.find("member_thunk: could not ") == 0);
				// A page whose sealing failed stays writable, unless putting it back (a commit) failed too.
				if (o.what == kind::mark_executable && sealed_after_failure_)
				{
					const bool restoring_failed = has(fired, os_call::make_writable);
					RC_ASSERT(restoring_failed);
				}
			}
			verify();
		}

		/// Faults off: seals every page with thunks, calls them all, destroys everything and compacts.
		void finish(const prop::argument_values& args)
		{
			os_faults::reset();
			for (auto& p : pages_)
			{
				if (p.thunks.empty())
					continue; // (sealed, it could sit unnoticed on a revoked address)
				p.page.mark_executable();
				p.model.executable = true;
				for (std::size_t t = 0; t < p.thunks.size(); ++t)
					check_call(p.model.thunks[t], p.thunks[t], args);
			}
			verify();
			pages_.clear();
			verify();
			heap_.compact();
			RC_ASSERT(heap_.statistics().regions == 0u);
			RC_ASSERT(heap_.is_valid());
		}

	private:
		[[nodiscard]] static int pending(os_call c) { return os_faults::fail_in.at(static_cast<std::size_t>(c)); }

		static void check_call(const prop::thunk_model& t, std::uintptr_t address, const prop::argument_values& args)
		{
			const double actual = prop::invoke(t.signature, address, args);
			const double expected = prop::expected(t.signature, t.how, t.object, args);
			RC_ASSERT(actual == expected);
		}

		/// Applies `o`; returns the address of a page it revoked (if that page had thunks to locate it by).
		std::optional<std::uintptr_t> apply(const op& o)
		{
			switch (o.what)
			{
			case kind::allocate:
				for (std::size_t n = pages_to_allocate(o); n != 0 && pages_.size() < max_pages; --n)
					pages_.push_back({heap_.allocate_page(), {}, {}});
				break;
			case kind::make_thunk:
				if (!pages_.empty())
					make_thunk(pages_[o.a % pages_.size()], o);
				break;
			case kind::mark_executable:
				// Only pages with thunks, whose address is known: so that any executable address the checks meet
				// belongs to a page they know.
				if (!pages_.empty() && !pages_[o.a % pages_.size()].thunks.empty())
				{
					auto& p = pages_[o.a % pages_.size()];
					try
					{
						p.page.mark_executable();
					}
					catch (...)
					{
						// Sealed or not, as the page says (it stays writable unless restoring it failed too).
						p.model.executable = p.page.executable();
						sealed_after_failure_ = p.model.executable;
						throw;
					}
					p.model.executable = true;
				}
				break;
			case kind::call: {
				std::vector<std::pair<std::size_t, std::size_t>> callable;
				for (std::size_t p = 0; p < pages_.size(); ++p)
					if (pages_[p].model.executable)
						for (std::size_t t = 0; t < pages_[p].thunks.size(); ++t)
							callable.emplace_back(p, t);
				if (!callable.empty())
				{
					const auto [p, t] = callable[o.a % callable.size()];
					check_call(pages_[p].model.thunks[t], pages_[p].thunks[t], o.args);
				}
				break;
			}
			case kind::destroy:
				if (!pages_.empty())
				{
					const std::size_t i = o.a % pages_.size();
					const auto address = address_of(pages_[i]);
					{
						const live_page doomed = std::move(pages_[i]);
						pages_.erase(pages_.begin() + static_cast<std::ptrdiff_t>(i));
					}
					return revoke(address);
				}
				break;
			case kind::move:
				if (!pages_.empty())
				{
					const std::size_t i = o.a % pages_.size();
					live_page moved{member_thunk::page(std::move(pages_[i].page)), std::move(pages_[i].model),
					                std::move(pages_[i].thunks)};
					pages_.erase(pages_.begin() + static_cast<std::ptrdiff_t>(i));
					pages_.push_back(std::move(moved));
				}
				break;
			case kind::move_assign:
				if (pages_.size() >= 2 && o.a % pages_.size() != o.b % pages_.size())
				{
					const std::size_t from = o.a % pages_.size();
					const std::size_t to = o.b % pages_.size();
					const auto address = address_of(pages_[to]);
					pages_[to].page = std::move(pages_[from].page); // revokes the page `to` held
					pages_[to].model = std::move(pages_[from].model);
					pages_[to].thunks = std::move(pages_[from].thunks);
					pages_.erase(pages_.begin() + static_cast<std::ptrdiff_t>(from));
					return revoke(address);
				}
				break;
			case kind::compact:
				heap_.compact();
				break;
			case kind::destroy_all: // (see step())
			case kind::inject:
			case kind::count:
				break;
			}
			return std::nullopt;
		}

		std::optional<std::uintptr_t> revoke(std::optional<std::uintptr_t> address)
		{
			if (address)
				revoked_.push_back(*address);
			return address;
		}

		void make_thunk(live_page& p, const op& o)
		{
			const auto expected = prop::predict(p.model, o.how);
			const long id = next_object_++;
			switch (expected)
			{
			case prop::outcome::made:
				p.thunks.push_back(prop::make_thunk(p.page, o.signature, o.how, id, objects_));
				prop::add_thunk(p.model, o.signature, o.how, id);
				break;
			case prop::outcome::page_full:
				RC_ASSERT_THROWS_AS(static_cast<void>(prop::make_thunk(p.page, o.signature, o.how, id, objects_)),
				                    member_thunk::page_full);
				break;
			case prop::outcome::page_executable:
				RC_ASSERT_THROWS_AS(static_cast<void>(prop::make_thunk(p.page, o.signature, o.how, id, objects_)),
				                    member_thunk::page_executable);
				break;
			}
		}

		void verify() const
		{
			RC_ASSERT(heap_.is_valid());
			RC_ASSERT(heap_.statistics().live_pages == pages_.size());
			const auto maps = test::read_maps();
			if (const auto wx = test::writable_executable_in(maps); !wx.empty())
				RC_FAIL("a mapping is writable and executable: " + test::describe(wx.front()));
			std::vector<std::uintptr_t> live;
			for (const auto& p : pages_)
			{
				RC_ASSERT(p.page.executable() == p.model.executable);
				RC_ASSERT(p.page.size() == p.model.thunks.size());
				if (const auto address = address_of(p))
				{
					live.push_back(*address);
					RC_ASSERT(test::protection_in(maps, reinterpret_cast<const void*>(*address)) ==
					          (p.model.executable ? "r-x" : "rw-"));
				}
			}
			// Every page ever revoked stays non-executable, unless a live page (sealed, so it has thunks and a
			// known address) now sits there.
			for (const auto address : revoked_)
				if (std::find(live.begin(), live.end(), address) == live.end())
					RC_ASSERT(test::protection_in(maps, reinterpret_cast<const void*>(address)) != "r-x");
		}

		faulty_heap& heap_;
		prop::object_store& objects_;
		std::vector<live_page> pages_;
		std::vector<std::uintptr_t> revoked_;
		long next_object_ = 1;
		bool sealed_after_failure_ = false; // the last mark_executable threw and left the page sealed
	};

	/// Resets the injected faults around each case, however it ends.
	struct fault_scope
	{
		fault_scope()
		{
			os_faults::reset();
			recording_os::reset();
		}
		fault_scope(const fault_scope&) = delete;
		fault_scope& operator=(const fault_scope&) = delete;
		fault_scope(fault_scope&&) = delete;
		fault_scope& operator=(fault_scope&&) = delete;
		~fault_scope()
		{
			os_faults::reset();
			recording_os::reset();
		}
	};
} // namespace

TEST_CASE("property: injected OS failures are reported, leak nothing and never leave a wrong or executable thunk",
          "[property][fault]")
{
	rc::prop("fault injection", [] {
		const auto ops = *rc::gen::scale(2.0, rc::gen::container<std::vector<op>>(op_gen()));
		const auto final_args = *prop::arguments_gen();

		const fault_scope faults;
		const auto baseline = test::mapping_count();
		{
			prop::object_store objects; // outlives the heap's pages
			faulty_heap heap;
			runner r(heap, objects);
			for (const auto& o : ops)
				r.step(o);
			r.finish(final_args);
			// Every reservation that succeeded was released.
			for (const auto address : recording_os::held)
				RC_FAIL("the reservation at " + std::to_string(address) + " was never released");
			if (exact_mapping_count)
				RC_ASSERT(test::mapping_count() == baseline);
		}
		if (exact_mapping_count)
			RC_ASSERT(test::mapping_count() == baseline);
	});
}
