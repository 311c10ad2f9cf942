// member_thunk: what an OS back end returns, and the concept every back end satisfies.
#pragma once

#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <system_error>

namespace member_thunk::detail::os
{
	/// The error category of a failure for which the OS gave no error code (a Win32 call that failed without setting
	/// the last error, an errno of 0): its one code says so, instead of an error_code of 0 that reads as success.
	class unreported_error_category final : public std::error_category
	{
	public:
		static constexpr int code = 1;

		[[nodiscard]] const char* name() const noexcept override { return "member_thunk.os"; }
		[[nodiscard]] std::string message([[maybe_unused]] int value) const override
		{
			return "the operating system reported a failure without an error code";
		}

		[[nodiscard]] static const std::error_category& instance() noexcept
		{
			static const unreported_error_category category;
			return category;
		}
	};

	/// Outcome of one OS call: success, or the OS error code, the name of the call that failed and, when the code
	/// alone would mislead, the reason the OS said no. Back ends never throw and never print; the layers above turn a
	/// failure into an exception or a fatal report. A failure is never ok(), whatever code it was given: ok() does
	/// not look at the code, and a code of 0 is replaced by unreported_error_category's.
	class [[nodiscard]] result
	{
	public:
		[[nodiscard]] static result success() noexcept { return {}; }

		[[nodiscard]] static result failure(std::error_code error, const char* failed_call,
		                                    const char* reason = nullptr) noexcept
		{
			result r;
			r.failed_ = true;
			r.policy_ = false;
			r.error_ =
			    error ? error : std::error_code(unreported_error_category::code, unreported_error_category::instance());
			r.call_ = failed_call != nullptr ? failed_call : "an OS call";
			r.reason_ = reason;
			return r;
		}

		/// A failure because a policy of the process forbids making memory executable (W^X enforcement: MDWE,
		/// seccomp, SELinux, PaX, Windows ACG), as opposed to a lack of resources.
		[[nodiscard]] static result refused_by_policy(std::error_code error, const char* failed_call,
		                                              const char* reason) noexcept
		{
			result r = failure(error, failed_call, reason);
			r.policy_ = true;
			return r;
		}

		[[nodiscard]] bool ok() const noexcept { return !failed_; }
		/// Whether this failure is a W^X policy's refusal (see refused_by_policy).
		[[nodiscard]] bool is_policy_refusal() const noexcept { return policy_; }
		/// The OS error (never 0 for a failure); empty for a success.
		[[nodiscard]] std::error_code error() const noexcept { return error_; }
		/// The call that failed, as the message names it ("mprotect(PROT_READ|PROT_EXEC)"); "" for a success.
		[[nodiscard]] const char* call() const noexcept { return call_; }
		/// Why the OS refused, when the error code alone would mislead; else null.
		[[nodiscard]] const char* reason() const noexcept { return reason_; }

	private:
		result() noexcept = default;

		bool failed_ = false;
		bool policy_ = false;
		std::error_code error_{};
		const char* call_ = "";
		const char* reason_ = nullptr;
	};

	/// Access to memory that is already committed (protect()): none, read-only, read-write. Never executable.
	enum class access
	{
		none,
		read,
		read_write
	};

	/// Reads the `entries` bitmask of set_call_targets (see backend below): the offsets of its entries, ascending, up
	/// to the end of the code.
	class entry_offsets
	{
	public:
		entry_offsets(std::span<const std::uint64_t> entries, std::size_t stride, std::size_t size) noexcept :
		    entries_(entries), stride_(stride), size_(size), bits_(entries.empty() ? 0 : entries[0])
		{
		}

		/// The next entry's offset into `offset`; false once there is none left before the end of the code.
		bool next(std::size_t& offset) noexcept
		{
			while (bits_ == 0)
			{
				if (++word_ >= entries_.size())
					return false;
				bits_ = entries_[word_];
			}
			const auto bit = static_cast<std::size_t>(std::countr_zero(bits_));
			bits_ &= bits_ - 1;
			offset = (word_ * 64 + bit) * stride_;
			if (offset < size_)
				return true;
			word_ = entries_.size(); // every later entry is further still
			bits_ = 0;
			return false;
		}

	private:
		std::span<const std::uint64_t> entries_;
		std::size_t stride_;
		std::size_t size_;
		std::size_t word_ = 0;
		std::uint64_t bits_;
	};

	/// The OS contract (one back end per OS family, a class of static functions). All sizes and addresses are
	/// multiples of page_size(); a reservation is region_size() bytes and aligned to it or to the OS granularity.
	///  - reserve(size, preferred, out): address space, inaccessible, not executable, no memory committed; at
	///                    `preferred` if that range is free, else anywhere (preferred may be null).
	///  - make_writable:   pages get memory and become readable and writable (never executable).
	///  - make_executable: pages become readable and executable, never writable (PROT_BTI where the CPU has BTI).
	///  - flush_instruction_cache: after writing code, before running it.
	///  - set_call_targets(code, size, entries, stride, valid): mark the entries of [code, code + size) valid or
	///                    invalid indirect-call targets (Windows CFG; elsewhere a no-op). `entries` is a bitmask of
	///                    slots `stride` bytes apart (bit i % 64 of entries[i / 64] set: the code at offset
	///                    i * stride is an entry); only the set bits are marked, nothing between them (the rest of a
	///                    closure's code, a chunk's shared code). stride is a multiple of 16; bits past `size` are
	///                    ignored. If it fails part-way while marking them valid, it withdraws what it marked.
	///  - decommit:        pages become inaccessible and their memory is returned to the OS.
	///  - unreserve:       the whole reservation is returned.
	///  - protect(address, size, access): committed memory (private or the program's own, such as .bss) gets that
	///                    access; never executable.
	///  - probe_executable: whether the process may make memory executable: an inaccessible page of a reservation
	///                    is made read-execute and inaccessible again; a W^X policy's refusal is_policy_refusal().
	///  - map_image_code(at, size, code): maps at `at` (inside a reservation, MAP_FIXED-style) a read-execute view of
	///                    `size` bytes of the program's own code or read-only data at `code`, from the file it was
	///                    loaded from, never writable; fails where that is impossible (no file, no such call).
	///  - map_sealed_copy(at, size, code): the same from a sealed in-memory file holding a copy of those bytes
	///                    (Linux memfd), which nothing can make writable again.
	template<class Os>
	concept backend = requires(void* address, void*& out, std::size_t size, std::span<const std::uint64_t> entries,
	                           bool valid)
	{
		{
			Os::page_size()
		}
		noexcept->std::same_as<std::size_t>;
		{
			Os::region_size()
		}
		noexcept->std::same_as<std::size_t>;
		{
			Os::reserve(size, address, out)
		}
		noexcept->std::same_as<result>;
		{
			Os::make_writable(address, size)
		}
		noexcept->std::same_as<result>;
		{
			Os::make_executable(address, size)
		}
		noexcept->std::same_as<result>;
		{
			Os::flush_instruction_cache(address, size)
		}
		noexcept->std::same_as<result>;
		{
			Os::set_call_targets(address, size, entries, size, valid)
		}
		noexcept->std::same_as<result>;
		{
			Os::decommit(address, size)
		}
		noexcept->std::same_as<result>;
		{
			Os::unreserve(address, size)
		}
		noexcept->std::same_as<result>;
		{
			Os::protect(address, size, access::read)
		}
		noexcept->std::same_as<result>;
		{
			Os::probe_executable(address, size)
		}
		noexcept->std::same_as<result>;
		{
			Os::map_image_code(address, size, address)
		}
		noexcept->std::same_as<result>;
		{
			Os::map_sealed_copy(address, size, address)
		}
		noexcept->std::same_as<result>;
	};
} // namespace member_thunk::detail::os
